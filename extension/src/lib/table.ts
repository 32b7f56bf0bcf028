/** Documents (or any list of objects) as an HTML table, and single values as cells. */

import type { Wire } from "../protocol";
import { h } from "./dom";
import {
  type WireObject,
  dateTime,
  isPlainObject,
  isScalar,
  jsonText,
  scalarKind,
  scalarText,
  shortId,
} from "./values";

/** Whether `value` shows as a table: a non-empty list of plain objects. */
export function isTable(value: Wire): value is WireObject[] {
  return Array.isArray(value) && value.length > 0 && value.every(isPlainObject);
}

/** Column order: `_id` first, fields in first-seen order, `_creationTime` last. */
export function columnsOf(rows: WireObject[], extra: string[] = []): string[] {
  const seen = new Set<string>();
  for (const row of rows) for (const key of Object.keys(row)) seen.add(key);
  for (const key of extra) seen.add(key);
  const fields = [...seen].filter((k) => k !== "_id" && k !== "_creationTime");
  return [
    ...(seen.has("_id") ? ["_id"] : []),
    ...fields,
    ...(seen.has("_creationTime") ? ["_creationTime"] : []),
  ];
}

/** One table cell for `value` in `column` (ids shortened, creation time as a date). */
export function cell(column: string, value: Wire | undefined): HTMLTableCellElement {
  const td = h("td");
  if (value === undefined) {
    td.className = "cl-missing";
    return td;
  }
  if (column === "_id" && typeof value === "string") {
    td.className = "cl-id";
    td.title = value;
    td.textContent = shortId(value);
    return td;
  }
  if (column === "_creationTime" && typeof value === "number") {
    td.className = "cl-time";
    td.title = `${value} ms since the epoch`;
    td.textContent = dateTime(value);
    return td;
  }
  if (isScalar(value)) {
    td.className = `cl-v-${scalarKind(value)}`;
    td.textContent = scalarText(value);
    if (scalarKind(value) === "bytes" || (typeof value === "string" && value.length > 60)) {
      td.title = typeof value === "string" ? value : jsonText(value);
    }
    return td;
  }
  td.className = "cl-v-json";
  td.textContent = jsonText(value);
  td.title = jsonText(value, 2);
  return td;
}

export interface TableOptions {
  /** Extra columns (e.g. schema fields absent from every row). */
  extraColumns?: string[];
  /** Called for each body cell after it is made (editing hooks). */
  decorate?: (td: HTMLTableCellElement, row: WireObject, column: string) => void;
  /** A trailing cell per row (actions). */
  actions?: (row: WireObject) => HTMLTableCellElement;
  /** The content of a column's header cell (default: its name). */
  header?: (th: HTMLTableCellElement, column: string) => void;
  /** A row to show under `row` (a message about it spanning `width` columns), or null. */
  after?: (row: WireObject, width: number) => HTMLTableRowElement | null;
}

export function documentTable(rows: WireObject[], options: TableOptions = {}): HTMLTableElement {
  const columns = columnsOf(rows, options.extraColumns);
  const head = h(
    "tr",
    {},
    ...columns.map((c) => {
      const th = h("th", { scope: "col" });
      if (options.header) options.header(th, c);
      else th.textContent = c;
      return th;
    }),
  );
  if (options.actions) head.appendChild(h("th", { class: "cl-actions-head" }));
  const width = columns.length + (options.actions ? 1 : 0);
  const body = h("tbody");
  for (const row of rows) {
    const tr = h("tr");
    for (const column of columns) {
      const td = cell(column, row[column]);
      options.decorate?.(td, row, column);
      tr.appendChild(td);
    }
    if (options.actions) tr.appendChild(options.actions(row));
    body.appendChild(tr);
    const extra = options.after?.(row, width);
    if (extra) body.appendChild(extra);
  }
  return h("table", { class: "cl-table" }, h("thead", {}, head), body);
}

/** A collapsible JSON tree (open to `openDepth` levels). */
export function jsonTree(value: Wire, openDepth = 2, depth = 0): HTMLElement {
  if (isScalar(value)) {
    return h("span", { class: `cl-v-${scalarKind(value)}` }, scalarText(value, true));
  }
  const entries: [string, Wire][] = Array.isArray(value)
    ? value.map((v, i) => [String(i), v])
    : Object.entries(value as WireObject);
  const brackets = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
  if (entries.length === 0) return h("span", { class: "cl-v-json" }, brackets.join(""));
  const summary = h(
    "summary",
    {},
    `${brackets[0]}${entries.length} ${Array.isArray(value) ? "items" : "fields"}${brackets[1]}`,
  );
  const list = h("ul", { class: "cl-tree" });
  for (const [key, v] of entries) {
    list.appendChild(h("li", {}, h("span", { class: "cl-key" }, `${key}: `), jsonTree(v, openDepth, depth + 1)));
  }
  return h("details", { class: "cl-tree-node", open: depth < openDepth }, summary, list);
}

/** A value the best way: a table for documents, a scalar, or a JSON tree. */
export function valueView(value: Wire): HTMLElement {
  if (isTable(value)) return h("div", { class: "cl-table-wrap" }, documentTable(value));
  if (isScalar(value)) {
    return h("div", { class: "cl-scalar" }, h("span", { class: `cl-v-${scalarKind(value)}` }, scalarText(value, true)));
  }
  return h("div", { class: "cl-tree-wrap" }, jsonTree(value));
}
