/** Display of Convex values in their display JSON (see protocol.ts): scalars, JSON text, ids. */

import type { Wire } from "../protocol";

export type WireObject = { [key: string]: Wire };

export function isObject(v: Wire): v is WireObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The tag of a tagged value (`"$int64"`, ...), or null for plain values. */
export function tagOf(v: Wire): string | null {
  if (!isObject(v)) return null;
  const keys = Object.keys(v);
  const key = keys[0];
  return keys.length === 1 && key !== undefined && key.startsWith("$") ? key : null;
}

/** A plain object (a document or nested object), not a tagged scalar. */
export function isPlainObject(v: Wire): v is WireObject {
  return isObject(v) && tagOf(v) === null;
}

export function isScalar(v: Wire): boolean {
  return !Array.isArray(v) && !isPlainObject(v);
}

/** Kind of a scalar, for styling: string | number | int64 | boolean | null | bytes | other. */
export function scalarKind(v: Wire): string {
  if (v === null) return "null";
  const tag = tagOf(v);
  if (tag === "$int64") return "int64";
  if (tag === "$float") return "number";
  if (tag === "$bytes") return "bytes";
  if (tag !== null) return "other";
  return typeof v === "object" ? "other" : typeof v;
}

function base64Length(b64: string): number {
  const pad = b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0;
  return Math.floor((b64.length * 3) / 4) - pad;
}

/** A scalar as Convex prints it: int64 as `5n`, bytes as `bytes(3)`, strings unquoted. */
export function scalarText(v: Wire, quoteStrings = false): string {
  if (v === null) return "null";
  if (typeof v === "string") return quoteStrings ? JSON.stringify(v) : v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (isObject(v)) {
    const tag = tagOf(v);
    const inner = tag === null ? undefined : v[tag];
    if (typeof inner === "string") {
      if (tag === "$int64") return `${inner}n`;
      if (tag === "$float") return inner;
      if (tag === "$bytes") return `bytes(${base64Length(inner)})`;
      if (tag === "$repr") return inner;
    }
  }
  return JSON.stringify(v);
}

/** Compact (or indented) JSON-like text of any value, scalars as in `scalarText`. */
export function jsonText(v: Wire, indent = 0, depth = 0): string {
  if (isScalar(v)) return scalarText(v, true);
  const pad = indent > 0 ? "\n" + " ".repeat(indent * (depth + 1)) : "";
  const end = indent > 0 ? "\n" + " ".repeat(indent * depth) : "";
  const sep = indent > 0 ? "," : ", ";
  if (Array.isArray(v)) {
    if (v.length === 0) return "[]";
    return "[" + v.map((x) => pad + jsonText(x, indent, depth + 1)).join(sep) + end + "]";
  }
  const entries = Object.entries(v as WireObject);
  if (entries.length === 0) return "{}";
  return (
    "{" +
    entries.map(([k, x]) => `${pad}${JSON.stringify(k)}: ${jsonText(x, indent, depth + 1)}`).join(sep) +
    end +
    "}"
  );
}

/** `jd7f3k…q2xz`: a document ID shortened for a table cell. */
export function shortId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 6)}…${id.slice(-4)}` : id;
}

/** `_creationTime` (ms since the epoch) as a local date-time. */
export function dateTime(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toLocaleString();
}

/** Decode Convex's internal JSON int64 (`{"$integer": base64 LE}`, in literal validators). */
export function internalToWire(v: Wire): Wire {
  if (isObject(v) && typeof v["$integer"] === "string") {
    const bytes = Uint8Array.from(atob(v["$integer"]), (c) => c.charCodeAt(0));
    if (bytes.length === 8) {
      return { $int64: new DataView(bytes.buffer).getBigInt64(0, true).toString() };
    }
  }
  return v;
}

/** Structural equality of two display-JSON values. */
export function sameValue(a: Wire, b: Wire): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
