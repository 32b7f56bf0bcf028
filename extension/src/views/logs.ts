/** Logs: recent executions (newest first) with what they printed; updates live. */

import type { LogRow } from "../protocol";
import { Disposer, get } from "../model";
import { button, coalesce, h, replace } from "../lib/dom";
import { Header, errorBox } from "../lib/status";
import { durationText } from "../lib/when";
import { asWireError } from "../rpc";
import type { ViewProps } from "./types";

function time(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number, w = 2): string => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function renderLogs({ model, el, rpc }: ViewProps): () => void {
  const d = new Disposer();
  const header = new Header("Function logs");
  const errors = h("div", { class: "cl-errors" });
  const clear = button("Clear", () => {
    rpc.request({ type: "clear" }).catch((e: unknown) => replace(errors, errorBox(asWireError(e))));
  });
  header.tools.appendChild(clear);
  const body = h("div", { class: "cl-body cl-table-wrap cl-logs" });
  el.append(header.el, errors, body);

  function draw(): void {
    const entries = get<LogRow[]>(model, "entries");
    header.show(`${entries.length} execution${entries.length === 1 ? "" : "s"}`, get<number | null>(model, "updated_at"));
    if (entries.length === 0) {
      replace(body, h("div", { class: "cl-muted" }, "No executions yet."));
      return;
    }
    const rows = [...entries].reverse().map((e) =>
      h(
        "tr",
        { class: e.error === null ? "" : "cl-failed" },
        h("td", { class: "cl-time", title: new Date(e.started).toISOString() }, time(e.started)),
        h("td", { class: "cl-path" }, e.function),
        h("td", {}, e.kind),
        h("td", { class: "cl-num cl-duration", title: `${e.duration_ms.toFixed(3)} ms` }, durationText(e.duration_ms)),
        h("td", { class: "cl-log-error" }, e.error ?? ""),
        h("td", {}, e.lines.length ? h("pre", { class: "cl-lines" }, e.lines.join("\n")) : ""),
      ),
    );
    const head = h("tr", {}, ...["time", "function", "kind", "duration", "error", "printed"].map((c) => h("th", { scope: "col" }, c)));
    replace(body, h("table", { class: "cl-table" }, h("thead", {}, head), h("tbody", {}, ...rows)));
  }
  draw();
  d.onChange(model, ["entries", "updated_at"], coalesce(draw));
  return () => d.dispose();
}
