/** Test helpers for the views' unit tests (vitest): a stand-in for anywidget's model. Not part of
 * the bundle (index.ts does not import it). */

import type { Handler, Model } from "./model";
import { PROTOCOL_VERSION } from "./protocol";

/** A stand-in for anywidget's model: traits, events, and what the view sent. */
export class FakeModel implements Model {
  readonly sent: { [key: string]: unknown }[] = [];
  private readonly handlers = new Map<string, Set<Handler>>();

  constructor(private readonly state: { [key: string]: unknown }) {}

  get(key: string): unknown {
    return this.state[key];
  }
  set(key: string, value: unknown): void {
    this.state[key] = value;
    this.emit(`change:${key}`);
  }
  save_changes(): void {}
  on(event: string, callback: Handler): void {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event)?.add(callback);
  }
  off(event?: string | null, callback?: Handler | null): void {
    if (event && callback) this.handlers.get(event)?.delete(callback);
  }
  send(content: unknown): void {
    this.sent.push(content as { [key: string]: unknown });
  }
  emit(event: string, ...args: unknown[]): void {
    for (const cb of this.handlers.get(event) ?? []) cb(...args);
  }
  listeners(): number {
    let n = 0;
    for (const set of this.handlers.values()) n += set.size;
    return n;
  }
  /** What the kernel does: set traits (one change event each). */
  update(state: { [key: string]: unknown }): void {
    for (const [k, v] of Object.entries(state)) this.set(k, v);
  }
}

/** The traits every view has. */
export const base = { protocol_version: PROTOCOL_VERSION, status: "ready", error: null, version: 1, updated_at: 0 };

/** Let queued microtasks and timers of 0 ms run (coalesced redraws, answered requests). */
export const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

/** Answer the `index`-th request the view sent, as the kernel would. */
export function answer(model: FakeModel, index: number, reply: { ok: true; result?: unknown } | { ok: false; error: { name: string; message: string } }): void {
  const request = model.sent[index];
  if (request === undefined) throw new Error(`no request #${index}; sent: ${JSON.stringify(model.sent)}`);
  model.emit("msg:custom", { type: "response", id: request["id"], ...reply });
}
