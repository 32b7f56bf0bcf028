/**
 * The data browser's edits in flight and the edits the kernel refused (DESIGN §8: an edit shows
 * at once, marked pending, and rolls back with the error if the mutation fails).
 *
 * Invariants: a pending value is shown only until the kernel answers; the stored value (the
 * `rows` trait) is never changed here, so a refused edit rolls back by forgetting its pending
 * value. A document's error stays until an edit of that document succeeds, the user dismisses it
 * or the table changes. `version` grows on every change, so the view knows when to redraw.
 */

import type { Wire, WireError } from "../protocol";
import type { WireObject } from "../lib/values";

export interface RowError {
  /** The field whose edit failed. */
  field: string;
  error: WireError;
}

/** A pending edit's value; `UNSET` removes the field. */
export const UNSET: unique symbol = Symbol("unset");
export type EditValue = Wire | typeof UNSET;

export class EditState {
  private readonly pending = new Map<string, Map<string, EditValue>>();
  private readonly errors = new Map<string, RowError>();
  version = 0;

  /** An edit was sent: show `value` for `field` of `docId` until `settle`. */
  begin(docId: string, field: string, value: EditValue): void {
    let fields = this.pending.get(docId);
    if (fields === undefined) this.pending.set(docId, (fields = new Map()));
    fields.set(field, value);
    this.version += 1;
  }

  /** The kernel answered: forget the pending value; an error is kept, a success clears the
   * document's error. */
  settle(docId: string, field: string, error: WireError | null): void {
    const fields = this.pending.get(docId);
    fields?.delete(field);
    if (fields?.size === 0) this.pending.delete(docId);
    if (error === null) this.errors.delete(docId);
    else this.errors.set(docId, { field, error });
    this.version += 1;
  }

  /** An edit that never left the browser (what was typed cannot be read as the field's type). */
  fail(docId: string, field: string, error: WireError): void {
    this.errors.set(docId, { field, error });
    this.version += 1;
  }

  dismiss(docId: string): void {
    if (this.errors.delete(docId)) this.version += 1;
  }

  clear(): void {
    this.pending.clear();
    this.errors.clear();
    this.version += 1;
  }

  error(docId: string): RowError | undefined {
    return this.errors.get(docId);
  }

  isPending(docId: string, field: string): boolean {
    return this.pending.get(docId)?.has(field) ?? false;
  }

  /** `row` as the user should see it: the stored document with its pending values on top. */
  overlay(row: WireObject): WireObject {
    const id = row["_id"];
    const fields = typeof id === "string" ? this.pending.get(id) : undefined;
    if (fields === undefined) return row;
    const out: WireObject = { ...row };
    for (const [field, value] of fields) {
      if (value === UNSET) delete out[field];
      else out[field] = value;
    }
    return out;
  }
}
