/** Crons: name, schedule (in words and as JSON), function, next run, last run's state. Live.
 * Every time (next run, last run) is written one way: local time, then relative to the
 * backend's clock, UTC in the tooltip (lib/when.ts), as in the jobs view. */

import type { CronRow } from "../protocol";
import { Disposer, get } from "../model";
import { coalesce, h, replace } from "../lib/dom";
import { reloadButton } from "../lib/icons";
import { Header, errorBox } from "../lib/status";
import { jsonText } from "../lib/values";
import { clockNote, clockNow, stateBadge, timeCell, writeTime } from "../lib/when";
import { asWireError } from "../rpc";
import type { ViewProps } from "./types";

export function renderCrons({ model, el, rpc }: ViewProps): () => void {
  const d = new Disposer();
  const header = new Header("Crons");
  const errors = h("div", { class: "cl-errors" });
  header.tools.appendChild(
    reloadButton(() => void rpc.request({ type: "refresh" }).catch((e: unknown) => replace(errors, errorBox(asWireError(e))))),
  );
  const clockBox = h("div", { class: "cl-toolbar" });
  const body = h("div", { class: "cl-body cl-table-wrap" });
  el.append(header.el, clockBox, errors, body);

  function draw(): void {
    const crons = get<CronRow[]>(model, "crons");
    const now = clockNow(model);
    header.show(`${crons.length} cron${crons.length === 1 ? "" : "s"}`, get<number | null>(model, "updated_at"));
    replace(clockBox, clockNote(model));
    if (crons.length === 0) {
      replace(body, h("div", { class: "cl-muted" }, "No crons deployed."));
      return;
    }
    const rows = crons.map((c) =>
      h(
        "tr",
        { "data-cron": c.name },
        h("td", { class: "cl-path" }, c.name),
        h("td", { title: c.schedule === null ? "" : jsonText(c.schedule) }, c.schedule_text),
        h("td", { class: "cl-path" }, c.function),
        timeCell(c.nextRun, now),
        c.lastRun === null
          ? h("td", { class: "cl-muted" }, "never ran")
          : h(
              "td",
              { class: "cl-last-run" },
              stateBadge(c.lastRun.state, null),
              " ",
              writeTime(h("span", { class: "cl-time" }), c.lastRun.scheduledTime, now),
              c.lastRun.error === null ? null : h("div", { class: "cl-log-error" }, c.lastRun.error),
            ),
      ),
    );
    const head = h("tr", {}, ...["name", "schedule", "function", "next run", "last run"].map((c) => h("th", { scope: "col" }, c)));
    replace(body, h("table", { class: "cl-table" }, h("thead", {}, head), h("tbody", {}, ...rows)));
  }
  draw();
  d.onChange(model, ["crons", "clock_now", "updated_at"], coalesce(draw));
  // With the real clock "in 3 min" moves on by itself: redraw every 30 s.
  const timer = setInterval(() => {
    if (get<string>(model, "clock_kind") !== "virtual") draw();
  }, 30_000);
  d.add(() => clearInterval(timer));
  return () => d.dispose();
}
