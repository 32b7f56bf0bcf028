/**
 * Live query with file previews: the live table, where each cell holding a file URL of the
 * backend (what `ctx.storage.get_url` returns: `<origin>/api/storage/<id>/<signature>`) shows the
 * file — an image as a thumbnail (a link to the full file), anything else as a link.
 *
 * Images are tried first: a URL whose bytes are not an image falls back to a link, so no content
 * type has to travel with the URL.
 */

import type { Wire } from "../protocol";
import { Disposer, get } from "../model";
import { coalesce, flash, h, replace } from "../lib/dom";
import { Header, showError, statusOf } from "../lib/status";
import { documentTable, isTable, valueView } from "../lib/table";
import { jsonText } from "../lib/values";
import type { ViewProps } from "./types";

const FILE_URL = /^https?:\/\/[^/]+\/api\/storage\/[0-9a-z]+\/[A-Za-z0-9_-]+$/;

/** Whether `value` is a file URL of a convex_lab backend. */
export function isFileUrl(value: Wire | undefined): value is string {
  return typeof value === "string" && FILE_URL.test(value);
}

/** Replace `td`'s content by a preview of the file at `url`. */
export function preview(td: HTMLTableCellElement, url: string): void {
  const link = h("a", { href: url, target: "_blank", rel: "noopener", class: "cl-file-link" });
  const img = h("img", {
    src: url,
    alt: "file preview",
    loading: "lazy",
    class: "cl-thumb",
    style: "max-width: 96px; max-height: 72px; display: block; border-radius: 3px;",
  }) as HTMLImageElement;
  img.addEventListener("error", () => replace(link, "file ↗"), { once: true });
  link.appendChild(img);
  td.className = "cl-file";
  td.title = url;
  replace(td, link);
}

export function renderFilePreviews({ model, el }: ViewProps): () => void {
  const d = new Disposer();
  const args = get<Wire>(model, "args");
  const header = new Header(
    h(
      "span",
      {},
      h("span", { class: "cl-path" }, get<string>(model, "path")),
      h("span", { class: "cl-args" }, `(${args === null ? "" : jsonText(args)})`),
    ),
  );
  const errors = h("div", { class: "cl-errors" });
  const body = h("div", { class: "cl-body" });
  el.append(header.el, errors, body);
  let shown = "";

  const drawStatus = (): void => {
    header.show(statusOf(model), get<number | null>(model, "updated_at"));
    showError(model, errors);
  };
  const drawBody = (): void => {
    const hasValue = get<boolean>(model, "has_value");
    const value = get<Wire>(model, "value");
    const key = hasValue ? JSON.stringify(value) : `none:${statusOf(model)}`;
    if (key === shown) return;
    const isUpdate = shown !== "" && !shown.startsWith("none:");
    shown = key;
    if (!hasValue) {
      replace(body, h("div", { class: "cl-muted" }, statusOf(model) === "loading" ? "Loading…" : "No value yet."));
    } else if (isTable(value)) {
      const table = documentTable(value, {
        decorate: (td, row, column) => {
          const cellValue = row[column];
          if (isFileUrl(cellValue)) preview(td, cellValue);
        },
      });
      replace(body, h("div", { class: "cl-table-wrap" }, table));
    } else {
      replace(body, valueView(value));
    }
    if (isUpdate) flash(body);
  };
  drawStatus();
  drawBody();
  d.onChange(model, ["status", "error", "updated_at"], coalesce(drawStatus));
  d.onChange(model, ["value", "has_value", "status"], coalesce(drawBody));
  return () => d.dispose();
}
