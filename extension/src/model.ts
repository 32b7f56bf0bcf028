/** The part of anywidget's model the views use, and listener bookkeeping. */

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- anywidget's own handler type
export type Handler = (...args: any[]) => void;

export interface Model {
  get(key: string): unknown;
  set(key: string, value: unknown): void;
  save_changes(): void;
  on(event: string, callback: Handler): void;
  off(event?: string | null, callback?: Handler | null): void;
  send(content: unknown, callbacks?: unknown, buffers?: ArrayBuffer[]): void;
}

/** Typed read of a trait (the Python side guarantees the shape). */
export function get<T>(model: Model, key: string): T {
  return model.get(key) as T;
}

/** Collects cleanups; every `model.on` made through it is paired with its `model.off`. */
export class Disposer {
  private readonly cleanups: (() => void)[] = [];

  on(model: Model, event: string, callback: Handler): void {
    model.on(event, callback);
    this.cleanups.push(() => model.off(event, callback));
  }

  /** `change:a change:b` → one callback for each trait change. */
  onChange(model: Model, traits: string[], callback: () => void): void {
    for (const trait of traits) this.on(model, `change:${trait}`, callback);
  }

  add(cleanup: () => void): void {
    this.cleanups.push(cleanup);
  }

  dispose(): void {
    for (const cleanup of this.cleanups.splice(0).reverse()) cleanup();
  }
}
