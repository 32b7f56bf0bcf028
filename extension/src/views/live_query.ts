/** Live query: documents as a table, other values as a value or a JSON tree, or render='s HTML. */

import type { Wire } from "../protocol";
import { Disposer, get } from "../model";
import { coalesce, flash, h, replace } from "../lib/dom";
import { Header, showError, statusOf } from "../lib/status";
import { valueView } from "../lib/table";
import { jsonText } from "../lib/values";
import type { ViewProps } from "./types";

export function renderLiveQuery({ model, el }: ViewProps): () => void {
  const d = new Disposer();
  const args = get<Wire>(model, "args");
  const title = h(
    "span",
    {},
    h("span", { class: "cl-path" }, get<string>(model, "path")),
    h("span", { class: "cl-args" }, `(${args === null ? "" : jsonText(args)})`),
  );
  const header = new Header(title);
  const errors = h("div", { class: "cl-errors" });
  const body = h("div", { class: "cl-body" });
  el.append(header.el, errors, body);
  let shown = ""; // what the body shows, to flash only on a new value

  const drawStatus = (): void => {
    header.show(statusOf(model), get<number | null>(model, "updated_at"));
    showError(model, errors);
  };
  const drawBody = (): void => {
    const rendered = get<boolean>(model, "rendered");
    const hasValue = get<boolean>(model, "has_value");
    const key = rendered ? `html:${get<string>(model, "html")}` : hasValue ? `value:${JSON.stringify(get<Wire>(model, "value"))}` : `none:${statusOf(model)}`;
    if (key === shown) return;
    const isUpdate = shown.startsWith("value:") || shown.startsWith("html:");
    shown = key;
    if (rendered) {
      const html = h("div", { class: "cl-rendered" });
      html.innerHTML = get<string>(model, "html"); // the notebook owner's own render= output
      replace(body, html);
    } else if (hasValue) {
      replace(body, valueView(get<Wire>(model, "value")));
    } else {
      const text = statusOf(model) === "loading" ? "Loading…" : "No value yet.";
      replace(body, h("div", { class: "cl-muted" }, text));
    }
    if (isUpdate) flash(body);
  };
  drawStatus();
  drawBody();
  d.onChange(model, ["status", "error", "updated_at"], coalesce(drawStatus));
  d.onChange(model, ["value", "html", "has_value", "status"], coalesce(drawBody));
  return () => d.dispose();
}
