/**
 * Live search box: a text input over a search query; the results below stay live.
 *
 * Typing sends `{type: "search", text}` (debounced, and only the latest text: an answer for an
 * older text never replaces a newer one); the kernel then follows the query for that text, so
 * the results change whenever a commit writes a matching document.
 */

import type { Request, Wire } from "../protocol";
import { Disposer, get } from "../model";
import { coalesce, flash, h, replace } from "../lib/dom";
import { Header, showError, statusOf } from "../lib/status";
import { valueView } from "../lib/table";
import type { ViewProps } from "./types";

/** How long typing must pause before the text is searched (ms). */
export const DEBOUNCE_MS = 120;

interface SearchRequest {
  type: "search";
  text: string;
}

export function renderSearchBox({ model, el, rpc }: ViewProps): () => void {
  const d = new Disposer();
  const header = new Header(h("span", { class: "cl-path" }, get<string>(model, "path")));
  const input = h("input", {
    class: "cl-search-input",
    type: "search",
    placeholder: get<string>(model, "placeholder"),
    "aria-label": "search text",
    style: "width: 100%; box-sizing: border-box; padding: 4px 8px; margin: 4px 0;",
  }) as HTMLInputElement;
  input.value = get<string>(model, "text");
  const errors = h("div", { class: "cl-errors" });
  const body = h("div", { class: "cl-body" });
  el.append(header.el, h("div", { class: "cl-search" }, input), errors, body);

  let timer: ReturnType<typeof setTimeout> | null = null;
  let sent = 0; // requests sent; only the latest one's failure is shown
  const send = (): void => {
    timer = null;
    sent += 1;
    const mine = sent;
    const request: SearchRequest = { type: "search", text: input.value };
    rpc.request(request as unknown as Request).catch((e: unknown) => {
      if (mine !== sent) return;
      const message = e instanceof Error ? e.message : String(e);
      replace(errors, h("div", { class: "cl-error", role: "alert" }, message));
    });
  };
  const onInput = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(send, DEBOUNCE_MS);
  };
  input.addEventListener("input", onInput);
  d.add(() => {
    input.removeEventListener("input", onInput);
    if (timer !== null) clearTimeout(timer);
  });

  let shown = "";
  const drawStatus = (): void => {
    header.show(statusOf(model), get<number | null>(model, "updated_at"));
    showError(model, errors);
    // Another view of the same widget (or Python's widget.search) changed the text.
    const text = get<string>(model, "text");
    if (document.activeElement !== input && input.value !== text) input.value = text;
  };
  const drawBody = (): void => {
    const hasValue = get<boolean>(model, "has_value");
    const value = get<Wire>(model, "value");
    const key = hasValue ? JSON.stringify(value) : "";
    if (key === shown) return;
    const isUpdate = shown !== "";
    shown = key;
    if (!hasValue) {
      replace(body, h("div", { class: "cl-muted" }, "Searching…"));
    } else if (Array.isArray(value) && value.length === 0) {
      replace(body, h("div", { class: "cl-muted" }, "No matches."));
    } else {
      replace(body, valueView(value));
    }
    if (isUpdate) flash(body);
  };
  drawStatus();
  drawBody();
  d.onChange(model, ["status", "error", "updated_at", "text"], coalesce(drawStatus));
  d.onChange(model, ["value", "has_value"], coalesce(drawBody));
  return () => d.dispose();
}
