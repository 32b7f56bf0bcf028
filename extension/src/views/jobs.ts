/** Scheduled functions: the `_scheduled_functions` documents, newest first, with their states;
 * pending jobs have a Cancel button (a `cancel` request the kernel validates). Updates live. */

import type { JobRow, JobState } from "../protocol";
import { Disposer, get } from "../model";
import { button, coalesce, h, replace } from "../lib/dom";
import { reloadButton } from "../lib/icons";
import { Header, errorBox } from "../lib/status";
import { jsonText } from "../lib/values";
import { clockNote, clockNow, stateBadge, timeCell } from "../lib/when";
import { asWireError } from "../rpc";
import type { ViewProps } from "./types";

const STATES: JobState[] = ["pending", "inProgress", "success", "failed", "canceled"];

export function renderJobs({ model, el, rpc }: ViewProps): () => void {
  const d = new Disposer();
  const header = new Header("Scheduled functions");
  const errors = h("div", { class: "cl-errors" });
  const fail = (e: unknown): void => replace(errors, errorBox(asWireError(e)));
  header.tools.appendChild(reloadButton(() => void rpc.request({ type: "refresh" }).catch(fail)));
  const summary = h("div", { class: "cl-toolbar cl-job-counts" });
  const body = h("div", { class: "cl-body cl-table-wrap" });
  el.append(header.el, summary, errors, body);

  function cancel(id: string, b: HTMLButtonElement): void {
    b.disabled = true;
    rpc.request({ type: "cancel", job_id: id }).then(() => replace(errors), (e: unknown) => {
      b.disabled = false;
      fail(e);
    });
  }

  function draw(): void {
    const rows = get<JobRow[]>(model, "rows");
    const counts = get<{ [state: string]: number }>(model, "counts");
    const total = get<number>(model, "total");
    const now = clockNow(model);
    header.show(`${total} job${total === 1 ? "" : "s"}`, get<number | null>(model, "updated_at"));
    replace(
      summary,
      ...STATES.filter((s) => (counts[s] ?? 0) > 0).map((s) => h("span", { class: "cl-job-state", "data-state": s }, `${counts[s]} ${s}`)),
      clockNote(model),
    );
    if (rows.length === 0) {
      replace(body, h("div", { class: "cl-muted" }, "No scheduled functions yet."));
      return;
    }
    const trs = rows.map((r) => {
      const action = r.state === "pending" ? button("Cancel", () => cancel(r.id, action as HTMLButtonElement), { class: "cl-button cl-danger" }) : null;
      return h(
        "tr",
        { "data-job": r.id, "data-state": r.state },
        h("td", { class: "cl-path" }, r.name),
        timeCell(r.scheduledTime, now),
        h("td", {}, stateBadge(r.state, r.error)),
        timeCell(r.completedTime, now),
        h("td", { class: "cl-args" }, jsonText(r.args)),
        h("td", { class: "cl-actions" }, action),
      );
    });
    const head = h("tr", {}, ...["function", "scheduled", "state", "completed", "args", ""].map((c) => h("th", { scope: "col" }, c)));
    replace(body, h("table", { class: "cl-table" }, h("thead", {}, head), h("tbody", {}, ...trs)));
  }
  draw();
  d.onChange(model, ["rows", "counts", "total", "clock_now", "updated_at"], coalesce(draw));
  return () => d.dispose();
}
