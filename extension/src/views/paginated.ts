/** Paginated live query: the loaded pages as one table, and "Load more". */

import { Disposer, get } from "../model";
import { button, coalesce, flash, h, replace } from "../lib/dom";
import { Header, errorBox, showError, statusOf } from "../lib/status";
import { documentTable, valueView } from "../lib/table";
import { asWireError } from "../rpc";
import type { Wire } from "../protocol";
import { isPlainObject } from "../lib/values";
import type { ViewProps } from "./types";

export function renderPaginated({ model, el, rpc }: ViewProps): () => void {
  const d = new Disposer();
  const header = new Header(h("span", { class: "cl-path" }, get<string>(model, "path") || "paginated query"));
  const errors = h("div", { class: "cl-errors" });
  const body = h("div", { class: "cl-body cl-table-wrap" });
  const count = h("span", { class: "cl-muted" });
  const more = button("Load more", () => {
    more.disabled = true;
    rpc
      .request({ type: "load_more", num_items: get<number>(model, "page_size") })
      .catch((e: unknown) => replace(errors, errorBox(asWireError(e))))
      .finally(draw);
  });
  const footer = h("div", { class: "cl-footer" }, more, count);
  el.append(header.el, errors, body, footer);
  let shownRows: string | null = null;

  function draw(): void {
    const pstatus = get<string>(model, "pagination_status");
    header.show(statusOf(model) === "error" ? "error" : pstatus, get<number | null>(model, "updated_at"));
    showError(model, errors);
    const rows = get<Wire[]>(model, "rows");
    if (rows.length === 0) {
      replace(body, h("div", { class: "cl-muted" }, pstatus === "LoadingFirstPage" ? "Loading…" : "No results."));
    } else if (rows.every(isPlainObject)) {
      replace(body, documentTable(rows.filter(isPlainObject)));
    } else {
      replace(body, valueView(rows));
    }
    const key = JSON.stringify(rows);
    if (shownRows !== null && key !== shownRows) flash(body);
    shownRows = key;
    more.disabled = pstatus !== "CanLoadMore";
    more.textContent = pstatus === "LoadingMore" ? "Loading…" : pstatus === "Exhausted" ? "All loaded" : "Load more";
    count.textContent = `${rows.length} item${rows.length === 1 ? "" : "s"}`;
  }
  draw();
  d.onChange(model, ["rows", "pagination_status", "status", "error", "updated_at"], coalesce(draw));
  return () => d.dispose();
}
