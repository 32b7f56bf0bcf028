/**
 * Data browser: pick a table, order by an index, filter by a field, page with next/prev, edit a
 * field inline (double-click a cell; Enter saves, Escape cancels, an empty optional field is
 * removed), delete a document (two clicks). Every change is a request the kernel validates.
 */

import type { FieldJson, FilterSpec, IndexInfo, TableInfo, ValidatorJson, Wire } from "../protocol";
import { Disposer, get } from "../model";
import { button, coalesce, flash, h, replace } from "../lib/dom";
import { InputError, editText, inferValidator, parseText, typeHint } from "../lib/form";
import { Header, errorBox, showError, statusOf } from "../lib/status";
import { documentTable } from "../lib/table";
import { type WireObject, isPlainObject, jsonText } from "../lib/values";
import { asWireError } from "../rpc";
import type { ViewProps } from "./types";

type Fields = { [name: string]: FieldJson };

export function renderDataBrowser({ model, el, rpc }: ViewProps): () => void {
  const d = new Disposer();
  const header = new Header("Data");
  const errors = h("div", { class: "cl-errors" });
  const tableSelect = h("select", { class: "cl-input", "aria-label": "table" });
  const indexSelect = h("select", { class: "cl-input", "aria-label": "index" });
  const orderButton = button("", () => browse({ order: get<string>(model, "order") === "asc" ? "desc" : "asc" }), {
    title: "order",
  });
  const filterField = h("select", { class: "cl-input", "aria-label": "filter field" });
  const filterValue = h("input", { class: "cl-input", type: "text", placeholder: "value", "aria-label": "filter value" });
  const filterApply = button("Filter", () => applyFilter());
  const filterClear = button("×", () => browse({ filter: null }), { title: "clear the filter" });
  const prev = button("‹ Prev", () => page("prev"));
  const next = button("Next ›", () => page("next"));
  const pageLabel = h("span", { class: "cl-muted" });
  const refresh = button("↻", () => run({ type: "refresh" }), { title: "reload" });
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
  el.append(header.el, toolbar, errors, body, footer);
  let shownRows: string | null = null;
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

  function run(request: Parameters<typeof rpc.request>[0]): Promise<boolean> {
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

  function startEdit(td: HTMLTableCellElement, row: WireObject, field: string): void {
    if (td.querySelector("input") !== null) return;
    const current = row[field];
    const validator = validatorFor(field, current);
    const optional = fields()[field]?.optional ?? true;
    const input = h("input", { class: "cl-input cl-cell-input", type: "text", spellcheck: "false" });
    input.value = editText(current, validator);
    input.title = `${typeHint(validator)}${optional ? " (empty: remove the field)" : ""} — Enter saves, Escape cancels`;
    const original = Array.from(td.childNodes);
    replace(td, input);
    input.focus();
    input.select();
    const cancel = (): void => replace(td, ...original);
    input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") cancel();
      if (e.key !== "Enter") return;
      const docId = row["_id"];
      if (typeof docId !== "string") return;
      let request: Parameters<typeof rpc.request>[0];
      try {
        request =
          input.value === "" && optional && validator.type !== "string"
            ? { type: "edit", doc_id: docId, field, unset: true }
            : { type: "edit", doc_id: docId, field, value: parseText(input.value, validator) };
      } catch (err) {
        input.classList.add("cl-invalid");
        input.title = err instanceof InputError ? err.message : String(err);
        return;
      }
      input.disabled = true;
      void run(request).then((saved) => {
        if (saved) replace(errors);
        else input.disabled = false;
        if (!saved) input.focus();
      });
    });
  }

  function actions(row: WireObject): HTMLTableCellElement {
    const docId = row["_id"];
    let armed: ReturnType<typeof setTimeout> | null = null;
    const del = button("🗑", () => {
      if (typeof docId !== "string") return;
      if (armed === null) {
        del.textContent = "Delete?";
        del.classList.add("cl-danger");
        const timer = setTimeout(() => {
          timers.delete(timer);
          armed = null;
          del.textContent = "🗑";
          del.classList.remove("cl-danger");
        }, 3000);
        armed = timer;
        timers.add(timer);
        return;
      }
      clearTimeout(armed);
      timers.delete(armed);
      del.disabled = true;
      void run({ type: "delete", doc_id: docId });
    }, { title: "delete this document (click twice)", class: "cl-button cl-icon" });
    return h("td", { class: "cl-actions" }, del);
  }

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
    const rows = get<Wire[]>(model, "rows").filter(isPlainObject);
    const key = JSON.stringify(rows);
    if (key === shownRows) return;
    if (rows.length === 0) {
      replace(body, h("div", { class: "cl-muted" }, get<string>(model, "table") ? "No documents." : "No tables yet."));
    } else {
      replace(
        body,
        documentTable(rows, {
          extraColumns: Object.keys(fields()),
          decorate: (td, row, column) => {
            if (column.startsWith("_")) return;
            td.classList.add("cl-editable");
            td.addEventListener("dblclick", () => startEdit(td, row, column));
          },
          actions,
        }),
      );
    }
    if (shownRows !== null) flash(body);
    shownRows = key;
  }

  drawControls();
  drawRows();
  d.onChange(
    model,
    ["tables", "table", "indexes", "index", "order", "filter", "page_index", "has_next", "status", "error", "updated_at", "fields", "rows"],
    coalesce(drawControls),
  );
  d.onChange(model, ["rows", "fields"], coalesce(drawRows));
  return () => d.dispose();
}
