/**
 * Data browser: pick a table, order by an index, filter by a field, page with next/prev, edit a
 * field inline, delete a document (two clicks). Every change is a request the kernel validates.
 *
 * - Sorting: a column header sorts by its field through an index that starts with it (a `sort`
 *   request: ascending, clicked again descending). Convex orders documents only through an index,
 *   so the headers of other fields do not sort; clicked, they show the kernel's answer on screen:
 *   which index to add.
 * - Editing (DESIGN §8): double-click a cell; Enter saves, Escape cancels, an empty optional field
 *   is removed. The new value shows at once, marked "saving…"; if the kernel refuses it (the
 *   schema's validation error) the cell rolls back to the stored value and the error stays on
 *   screen in a row under the document until an edit of it succeeds (views/edits.ts). Text that
 *   cannot be read as the schema's type is sent as a string, so the error is the schema's own.
 * - The page is redrawn when the kernel's rows change, but not under a cell being edited.
 */

import type { FieldJson, FilterSpec, IndexInfo, TableInfo, ValidatorJson, Wire } from "../protocol";
import { Disposer, get } from "../model";
import { button, coalesce, flash, h, replace } from "../lib/dom";
import { InputError, editText, inferValidator, parseText, typeHint } from "../lib/form";
import { icon, iconButton, reloadButton } from "../lib/icons";
import { Header, errorBox, showError, statusOf } from "../lib/status";
import { documentTable } from "../lib/table";
import { type WireObject, isPlainObject, jsonText, shortId } from "../lib/values";
import { asWireError } from "../rpc";
import { EditState, type EditValue, UNSET } from "./edits";
import type { ViewProps } from "./types";

type Fields = { [name: string]: FieldJson };
type Request = Parameters<ViewProps["rpc"]["request"]>[0];

export function renderDataBrowser({ model, el, rpc }: ViewProps): () => void {
  const d = new Disposer();
  const header = new Header("Data");
  const errors = h("div", { class: "cl-errors" });
  const notice = h("div", { class: "cl-errors" });
  const tableSelect = h("select", { class: "cl-input", "aria-label": "table" });
  const indexSelect = h("select", { class: "cl-input", "aria-label": "index" });
  const orderButton = button("", () => browse({ order: get<string>(model, "order") === "asc" ? "desc" : "asc" }), {
    title: "order",
  });
  const filterField = h("select", { class: "cl-input", "aria-label": "filter field" });
  const filterValue = h("input", { class: "cl-input", type: "text", placeholder: "value", "aria-label": "filter value" });
  const filterApply = button("Filter", () => applyFilter());
  const filterClear = button("×", () => browse({ filter: null }), { title: "clear the filter", "aria-label": "clear the filter" });
  const prev = button("‹ Prev", () => page("prev"));
  const next = button("Next ›", () => page("next"));
  const pageLabel = h("span", { class: "cl-muted" });
  const refresh = reloadButton(() => void run({ type: "refresh" }));
  const toolbar = h(
    "div",
    { class: "cl-toolbar" },
    tableSelect,
    indexSelect,
    orderButton,
    h("span", { class: "cl-sep" }),
    filterField,
    h("span", { class: "cl-muted" }, "="),
    filterValue,
    filterApply,
    filterClear,
    h("span", { class: "cl-grow" }),
    refresh,
  );
  const body = h("div", { class: "cl-body cl-table-wrap" });
  const footer = h("div", { class: "cl-footer" }, prev, pageLabel, next);
  el.append(header.el, toolbar, errors, notice, body, footer);
  const edits = new EditState();
  let shownRows: string | null = null;
  let shownKey: string | null = null;
  let shownTable: string | null = null;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  d.add(() => timers.forEach(clearTimeout));

  filterValue.addEventListener("keydown", (e) => {
    if (e.key === "Enter") applyFilter();
  });
  tableSelect.addEventListener("change", () => browse({ table: tableSelect.value, index: "by_creation_time", filter: null }));
  indexSelect.addEventListener("change", () => browse({ index: indexSelect.value }));

  function fields(): Fields {
    return get<Fields>(model, "fields");
  }

  function validatorFor(field: string, current: Wire | undefined): ValidatorJson {
    return fields()[field]?.fieldType ?? inferValidator(current);
  }

  function run(request: Request): Promise<boolean> {
    return rpc.request(request).then(
      () => true,
      (e: unknown) => {
        replace(errors, errorBox(asWireError(e)));
        return false;
      },
    );
  }

  function browse(change: { table?: string; index?: string; order?: string; filter?: FilterSpec | null }): void {
    const order = change.order ?? get<string>(model, "order");
    replace(notice);
    void run({
      type: "browse",
      table: change.table ?? get<string>(model, "table"),
      index: change.index ?? get<string>(model, "index"),
      order: order === "asc" ? "asc" : "desc",
      filter: change.filter === undefined ? get<FilterSpec | null>(model, "filter") : change.filter,
    });
  }

  function page(direction: "next" | "prev"): void {
    void run({ type: "page", direction });
  }

  function applyFilter(): void {
    const field = filterField.value;
    if (field === "") return browse({ filter: null });
    try {
      const sample = get<WireObject[]>(model, "rows").find((r) => field in r)?.[field];
      browse({ filter: { field, value: parseText(filterValue.value, validatorFor(field, sample)) } });
    } catch (e) {
      replace(errors, errorBox({ name: "InputError", message: e instanceof Error ? e.message : String(e) }));
    }
  }

  // Sorting ----------------------------------------------------------------------------------

  /** The field the page is ordered by: the current index's first field. */
  function sortedBy(): string | null {
    const index = get<string>(model, "index");
    if (index === "by_creation_time") return "_creationTime";
    return get<IndexInfo[]>(model, "indexes").find((i) => i.name === index)?.fields[0] ?? null;
  }

  function sort(field: string): void {
    replace(notice);
    rpc.request({ type: "sort", field }).then(
      () => replace(errors),
      (e: unknown) => {
        // A field no index starts with: the kernel says which index to add (not an error of
        // the page, so a notice rather than the red box).
        const error = asWireError(e);
        replace(notice, h("div", { class: "cl-notice", role: "status" }, error.message));
      },
    );
  }

  function headerCell(th: HTMLTableCellElement, column: string): void {
    const sortable = get<{ [field: string]: string } | undefined>(model, "sortable") ?? {};
    const active = sortedBy() === column;
    const asc = get<string>(model, "order") === "asc";
    const index = active ? get<string>(model, "index") : sortable[column];
    const b = button(column, () => sort(column), { class: "cl-sort" });
    if (index !== undefined) {
      th.setAttribute("aria-sort", active ? (asc ? "ascending" : "descending") : "none");
      b.title = active
        ? `sorted by ${column}, ${asc ? "ascending" : "descending"} (index ${index}): click to reverse`
        : `sort by ${column} (index ${index})`;
      if (active) {
        b.classList.add("cl-sort-active");
        b.appendChild(h("span", { class: "cl-sort-arrow", "aria-hidden": "true" }, asc ? " ↑" : " ↓"));
      }
    } else {
      b.classList.add("cl-sort-off");
      b.title =
        column === "_id"
          ? "IDs do not sort (they are random): sort by _creationTime"
          : `not sortable: no index starts with ${column}; click to see how to add one`;
    }
    th.appendChild(b);
  }

  // Editing ----------------------------------------------------------------------------------

  /** Whether a cell's input has the focus (a redraw would throw away what is being typed). */
  function editing(): boolean {
    const active = document.activeElement;
    return active instanceof HTMLInputElement && active.classList.contains("cl-cell-input") && body.contains(active);
  }

  function errorRow(docId: string, width: number): HTMLTableRowElement | null {
    const failure = edits.error(docId);
    if (failure === undefined) return null;
    const box = errorBox(failure.error) ?? h("div");
    box.classList.add("cl-row-error-box");
    box.prepend(h("span", { class: "cl-error-field" }, `${failure.field}: not saved.`), " ");
    const dismiss = button("×", () => {
      edits.dismiss(docId);
      drawRows();
    }, { class: "cl-button cl-icon cl-dismiss", title: "dismiss", "aria-label": "dismiss this error" });
    box.appendChild(dismiss);
    return h("tr", { class: "cl-row-error", "data-doc": docId }, h("td", { colspan: width }, box));
  }

  /** Put the document's error row (if any) right under `tr`, replacing the one there. */
  function placeErrorRow(tr: HTMLTableRowElement, docId: string): void {
    const nextRow = tr.nextElementSibling;
    if (nextRow instanceof HTMLTableRowElement && nextRow.classList.contains("cl-row-error")) nextRow.remove();
    const row = errorRow(docId, tr.cells.length);
    if (row !== null) tr.after(row);
  }

  function startEdit(td: HTMLTableCellElement, row: WireObject, field: string): void {
    const docId = row["_id"];
    if (td.querySelector("input") !== null || typeof docId !== "string") return;
    const current = row[field];
    const schema = fields()[field];
    const validator = schema?.fieldType ?? inferValidator(current);
    const optional = schema?.optional ?? true;
    const input = h("input", { class: "cl-input cl-cell-input", type: "text", spellcheck: "false", "aria-label": `edit ${field}` });
    input.value = editText(current, validator);
    input.title = `${typeHint(validator)}${optional ? " (empty: remove the field)" : ""} — Enter saves, Escape cancels`;
    const original = Array.from(td.childNodes);
    replace(td, input);
    input.focus();
    input.select();
    input.addEventListener("blur", () => queueMicrotask(drawRows)); // an update waited for it
    input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        if (edits.error(docId)?.error.name === "InputError") edits.dismiss(docId);
        replace(td, ...original);
        drawRows();
      }
      if (e.key !== "Enter") return;
      let value: EditValue;
      if (input.value === "" && optional && validator.type !== "string") value = UNSET;
      else {
        try {
          value = parseText(input.value, validator);
        } catch (err) {
          if (schema === undefined) {
            // No schema to name the problem: say it here, next to the field, and keep the input.
            const message = err instanceof InputError ? err.message : String(err);
            edits.fail(docId, field, { name: "InputError", message: `${message} (the field holds ${typeHint(validator)})` });
            input.classList.add("cl-invalid");
            const tr = td.closest("tr");
            if (tr !== null) placeErrorRow(tr, docId);
            return;
          }
          value = input.value; // the kernel validates it and answers with the schema's error
        }
      }
      edits.begin(docId, field, value);
      const request: Request =
        value === UNSET ? { type: "edit", doc_id: docId, field, unset: true } : { type: "edit", doc_id: docId, field, value };
      input.blur();
      drawRows();
      rpc.request(request).then(
        () => edits.settle(docId, field, null),
        (err: unknown) => edits.settle(docId, field, asWireError(err)),
      ).finally(drawRows);
    });
  }

  function actions(row: WireObject): HTMLTableCellElement {
    const docId = row["_id"];
    const label = `delete document ${typeof docId === "string" ? shortId(docId) : ""}`.trim();
    let armed: ReturnType<typeof setTimeout> | null = null;
    const disarm = (): void => {
      armed = null;
      replace(del, icon("trash"));
      del.setAttribute("aria-label", label);
      del.classList.remove("cl-danger");
    };
    const del = iconButton("trash", label, () => {
      if (typeof docId !== "string") return;
      if (armed === null) {
        del.textContent = "Delete?";
        del.setAttribute("aria-label", `confirm: ${label}`);
        del.classList.add("cl-danger");
        const timer = setTimeout(() => {
          timers.delete(timer);
          disarm();
        }, 3000);
        armed = timer;
        timers.add(timer);
        return;
      }
      clearTimeout(armed);
      timers.delete(armed);
      del.disabled = true;
      void run({ type: "delete", doc_id: docId });
    }, "cl-icon cl-delete");
    del.title = `${label} (click twice)`;
    return h("td", { class: "cl-actions" }, del);
  }

  // Drawing ----------------------------------------------------------------------------------

  function drawControls(): void {
    const tables = get<TableInfo[]>(model, "tables");
    const table = get<string>(model, "table");
    replace(tableSelect, ...tables.map((t) => h("option", { value: t.name, selected: t.name === table }, `${t.name} (${t.count})`)));
    if (tables.length === 0) tableSelect.appendChild(h("option", { value: "" }, "no tables yet"));
    const index = get<string>(model, "index");
    replace(
      indexSelect,
      ...get<IndexInfo[]>(model, "indexes").map((i) =>
        h("option", { value: i.name, selected: i.name === index }, i.fields.length ? `${i.name} (${i.fields.join(", ")})` : i.name),
      ),
    );
    orderButton.textContent = get<string>(model, "order") === "asc" ? "↑ asc" : "↓ desc";
    const filter = get<FilterSpec | null>(model, "filter");
    const rows = get<WireObject[]>(model, "rows").filter(isPlainObject);
    const names = new Set<string>([...Object.keys(fields()), ...rows.flatMap((r) => Object.keys(r))]);
    const chosen = filter?.field ?? filterField.value;
    replace(filterField, h("option", { value: "" }, "filter by…"), ...[...names].sort().map((n) => h("option", { value: n, selected: n === chosen }, n)));
    if (filter !== null && document.activeElement !== filterValue) {
      filterValue.value = typeof filter.value === "string" ? filter.value : jsonText(filter.value);
    }
    filterClear.disabled = filter === null;
    prev.disabled = get<number>(model, "page_index") === 0;
    next.disabled = !get<boolean>(model, "has_next");
    pageLabel.textContent = `page ${get<number>(model, "page_index") + 1} · ${rows.length} shown`;
    header.show(statusOf(model), get<number | null>(model, "updated_at"));
    showError(model, errors);
  }

  function drawRows(): void {
    if (editing()) return; // drawn again when the edit ends (blur, Enter, Escape)
    const table = get<string>(model, "table");
    if (shownTable !== null && table !== shownTable) edits.clear();
    shownTable = table;
    const stored = get<Wire[]>(model, "rows").filter(isPlainObject);
    const rowsKey = JSON.stringify(stored);
    const view = [get<string>(model, "index"), get<string>(model, "order"), get<unknown>(model, "sortable"), Object.keys(fields())];
    const key = `${rowsKey}|${JSON.stringify(view)}|${edits.version}`;
    if (key === shownKey) return;
    shownKey = key;
    if (stored.length === 0) {
      replace(body, h("div", { class: "cl-muted" }, table ? "No documents." : "No tables yet."));
    } else {
      const rows = stored.map((r) => edits.overlay(r));
      replace(
        body,
        documentTable(rows, {
          extraColumns: Object.keys(fields()),
          header: headerCell,
          decorate: (td, row, column) => {
            if (column.startsWith("_")) return;
            const docId = row["_id"];
            td.classList.add("cl-editable");
            td.addEventListener("dblclick", () => startEdit(td, row, column));
            if (typeof docId !== "string") return;
            if (edits.isPending(docId, column)) {
              td.classList.add("cl-pending");
              td.setAttribute("aria-busy", "true");
              td.appendChild(h("span", { class: "cl-pending-mark" }, " saving…"));
            }
            if (edits.error(docId)?.field === column) td.classList.add("cl-cell-error");
          },
          actions,
          after: (row, width) => (typeof row["_id"] === "string" ? errorRow(row["_id"], width) : null),
        }),
      );
    }
    if (shownRows !== null && rowsKey !== shownRows) flash(body);
    shownRows = rowsKey;
  }

  drawControls();
  drawRows();
  d.onChange(
    model,
    ["tables", "table", "indexes", "index", "order", "filter", "page_index", "has_next", "status", "error", "updated_at", "fields", "rows"],
    coalesce(drawControls),
  );
  d.onChange(model, ["rows", "fields", "index", "order", "sortable", "table"], coalesce(drawRows));
  return () => d.dispose();
}
