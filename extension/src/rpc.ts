/** Request/response over anywidget custom messages, with ids and timeouts. */

import type { Request, Response, Wire, WireError } from "./protocol";
import type { Model } from "./model";

/** A request the kernel answered with `ok: false` (or that timed out). */
export class RequestError extends Error {
  readonly error: WireError;

  constructor(error: WireError) {
    super(error.message);
    this.name = error.name;
    this.error = error;
  }
}

interface Pending {
  resolve: (result: Wire) => void;
  reject: (error: RequestError) => void;
  timer: ReturnType<typeof setTimeout>;
}

let counter = 0;
const session = Math.random().toString(36).slice(2, 10);

export class Rpc {
  private readonly pending = new Map<string, Pending>();
  private readonly onMessage = (msg: unknown): void => {
    if (typeof msg !== "object" || msg === null) return;
    const response = msg as Partial<Response>;
    if (response.type !== "response" || typeof response.id !== "string") return;
    const entry = this.pending.get(response.id);
    if (entry === undefined) return; // another view of the same model asked
    this.pending.delete(response.id);
    clearTimeout(entry.timer);
    if (response.ok) entry.resolve(response.result ?? null);
    else entry.reject(new RequestError(response.error ?? { name: "Error", message: "request failed" }));
  };

  constructor(private readonly model: Model) {
    model.on("msg:custom", this.onMessage);
  }

  /** Send `request`; resolves with the result or rejects with a RequestError. */
  request(request: Request, timeoutMs = 120_000): Promise<Wire> {
    counter += 1;
    const id = `${session}-${counter}`;
    return new Promise<Wire>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RequestError({
          name: "Timeout",
          message: `The kernel did not answer "${request.type}" within ${timeoutMs / 1000} s (is it busy or restarted?).`,
        }));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.model.send({ ...request, id });
    });
  }

  dispose(): void {
    this.model.off("msg:custom", this.onMessage);
    for (const [id, entry] of this.pending) {
      clearTimeout(entry.timer);
      entry.reject(new RequestError({ name: "Closed", message: `view closed before response ${id}` }));
    }
    this.pending.clear();
  }
}

/** The structured error of anything a request rejected with. */
export function asWireError(error: unknown): WireError {
  if (error instanceof RequestError) return error.error;
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: "Error", message: String(error) };
}
