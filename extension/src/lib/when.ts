/**
 * Times and durations for the views: one format everywhere — the local date-time with the time
 * relative to the backend's clock beside it ("2026-11-21 10:00:00 (in 3 min)"), UTC in the
 * tooltip — and durations with a unit that fits ("340 µs", "3.42 ms").
 * `relative` and `durationText` mirror convex_lab/jupyter/_schedule_text.py.
 */

import type { JobState } from "../protocol";
import { get, type Model } from "../model";
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

/** A run's duration, three significant digits: "4.2 µs", "340 µs", "3.42 ms", "123 ms",
 * "1.23 s", "2 min 5 s" (mirrors _schedule_text.duration_text: sub-ms runs never show "0.0 ms"). */
export function durationText(ms: number): string {
  const t = Math.max(ms, 0);
  const us = t * 1000;
  if (us < 9.95) return `${us.toFixed(1)} µs`;
  if (us < 999.5) return `${us.toFixed(0)} µs`;
  if (t < 9.995) return `${t.toFixed(2)} ms`;
  if (t < 99.95) return `${t.toFixed(1)} ms`;
  if (t < 999.5) return `${t.toFixed(0)} ms`;
  const s = t / 1000;
  if (s < 9.995) return `${s.toFixed(2)} s`;
  if (s < 59.95) return `${s.toFixed(1)} s`;
  const whole = Math.round(s);
  return `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

/** The clock the times are relative to: the backend's virtual clock, else the browser's. */
export function clockNow(model: Model): number {
  return get<string>(model, "clock_kind") === "virtual" ? get<number>(model, "clock_now") : Date.now();
}

/** A time as the views show it: local time, then "(in 3 min)" relative to `now`; UTC in the
 * tooltip of `into` (the element it is written into). */
export function writeTime(into: HTMLElement, ms: number, now: number): HTMLElement {
  into.title = new Date(ms).toISOString();
  into.append(localTime(ms), " ", h("span", { class: "cl-muted" }, `(${relative(ms, now)})`));
  return into;
}

/** A time cell (see writeTime); "—" without a time. */
export function timeCell(ms: number | null, now: number): HTMLTableCellElement {
  if (ms === null) return h("td", { class: "cl-missing" }, "—");
  return writeTime(h("td", { class: "cl-time" }), ms, now) as HTMLTableCellElement;
}

/** "virtual clock: 2026-11-21 10:00:00" when the backend runs on a virtual clock, else null. */
export function clockNote(model: Model): HTMLElement | null {
  if (get<string>(model, "clock_kind") !== "virtual") return null;
  const now = get<number>(model, "clock_now");
  return h("span", { class: "cl-muted cl-clock", title: new Date(now).toISOString() }, `virtual clock: ${localTime(now)}`);
}

/** A coloured state badge; a failure shows its error. */
export function stateBadge(state: JobState, error: string | null): HTMLElement {
  const badge = h("span", { class: "cl-job-state", "data-state": state }, state);
  if (error === null) return badge;
  return h("span", {}, badge, " ", h("span", { class: "cl-log-error" }, error));
}
