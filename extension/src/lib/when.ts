/** Times for the scheduler views: local date-time and "in 3 min" / "5 s ago". */

import type { JobState } from "../protocol";
import { h } from "./dom";

export function localTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number): string => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** `ms` seen from `now`: "in 3 min", "2 h ago", "now" (mirrors _schedule_text.relative). */
export function relative(ms: number, now: number): string {
  const delta = (ms - now) / 1000;
  const size = Math.abs(delta);
  if (size < 1) return "now";
  const units: [string, number][] = [
    ["d", 86_400],
    ["h", 3_600],
    ["min", 60],
    ["s", 1],
  ];
  for (const [unit, seconds] of units) {
    if (size >= seconds) {
      const amount = size / seconds;
      const text = amount >= 10 || unit === "s" ? `${Math.round(amount)} ${unit}` : `${Number(amount.toFixed(1))} ${unit}`;
      return delta > 0 ? `in ${text}` : `${text} ago`;
    }
  }
  return "now";
}

/** A time cell: local time, relative time beside it, UTC in the tooltip. */
export function timeCell(ms: number | null, now: number): HTMLTableCellElement {
  if (ms === null) return h("td", { class: "cl-missing" }, "—");
  return h(
    "td",
    { class: "cl-time", title: new Date(ms).toISOString() },
    localTime(ms),
    " ",
    h("span", { class: "cl-muted" }, `(${relative(ms, now)})`),
  );
}

/** A coloured state badge; a failure shows its error. */
export function stateBadge(state: JobState, error: string | null): HTMLElement {
  const badge = h("span", { class: "cl-job-state", "data-state": state }, state);
  if (error === null) return badge;
  return h("span", {}, badge, " ", h("span", { class: "cl-log-error" }, error));
}
