/** The pieces every view shares: a header (title, status, "updated" label) and an error box. */

import type { Status, WireError } from "../protocol";
import { get, type Model } from "../model";
import { clock, h, replace } from "./dom";
import { jsonText } from "./values";

export function errorBox(error: WireError | null): HTMLElement | null {
  if (error === null) return null;
  const box = h(
    "div",
    { class: "cl-error", role: "alert" },
    h("span", { class: "cl-error-name" }, error.name),
    " ",
    h("span", { class: "cl-error-message" }, error.message),
  );
  if (error.data !== undefined && error.data !== null && error.name === "ConvexError") {
    box.appendChild(h("pre", { class: "cl-error-data" }, jsonText(error.data, 2)));
  }
  return box;
}

export class Header {
  readonly el: HTMLElement;
  private readonly badge = h("span", { class: "cl-badge" });
  private readonly updated = h("span", { class: "cl-updated" });
  readonly tools = h("span", { class: "cl-tools" });

  constructor(title: string | HTMLElement) {
    this.el = h(
      "div",
      { class: "cl-header" },
      h("span", { class: "cl-title" }, title),
      this.badge,
      this.updated,
      this.tools,
    );
  }

  /** Show `status` (a word) and the time of the last update. */
  show(status: string, updatedAt: number | null): void {
    this.badge.textContent = status;
    this.badge.dataset["status"] = status;
    this.updated.textContent = updatedAt === null ? "" : `updated ${clock(updatedAt)}`;
    // when the view last got data, by this computer's clock (not a backend's virtual clock)
    this.updated.title = updatedAt === null ? "" : `last update, by this computer's clock: ${new Date(updatedAt).toString()}`;
  }
}

/** Keep `box` showing the model's `error` trait. */
export function showError(model: Model, box: HTMLElement): void {
  replace(box, errorBox(get<WireError | null>(model, "error")));
}

export function statusOf(model: Model): Status {
  return get<Status>(model, "status");
}
