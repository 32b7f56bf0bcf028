import { describe, expect, it } from "vitest";
import { mount } from "./index";
import { durationText, localTime, relative } from "./lib/when";
import { FakeModel, base } from "./test_model";

// The same cases as tests/test_scheduler_widgets.py::test_duration_text (one rule, two languages).
const DURATIONS: [number, string][] = [
  [0.0042, "4.2 µs"],
  [0.00995, "10 µs"],
  [0.34, "340 µs"],
  [0.9994, "999 µs"],
  [0.9996, "1.00 ms"],
  [3.4213, "3.42 ms"],
  [12.34, "12.3 ms"],
  [123.4, "123 ms"],
  [999.6, "1.00 s"],
  [1234, "1.23 s"],
  [12_345, "12.3 s"],
  [125_000, "2 min 5 s"],
];

describe("durations", () => {
  it.each(DURATIONS)("%f ms reads %s", (ms, text) => {
    expect(durationText(ms)).toBe(text);
  });

  it("shows sub-millisecond runs in the logs in µs, never as 0.0 ms", () => {
    const entry = (duration_ms: number): { [key: string]: unknown } => ({
      function: "tasks:list",
      kind: "query",
      lines: [],
      error: null,
      started: 1_700_000_000_000,
      duration_ms,
    });
    const model = new FakeModel({ ...base, _view: "logs", entries: [entry(0.34), entry(0.0042), entry(3.4213)], limit: 200 });
    const el = document.createElement("div");
    const cleanup = mount(model, el);
    const shown = [...el.querySelectorAll("td.cl-duration")].map((td) => td.textContent);
    expect(shown).toEqual(["3.42 ms", "4.2 µs", "340 µs"]); // newest first
    expect(el.textContent).not.toContain("0.0 ms");
    cleanup();
  });
});

describe("crons view times", () => {
  it("writes every time one way: local time and relative to the backend's clock", () => {
    const now = 1_700_000_000_000;
    const model = new FakeModel({
      ...base,
      _view: "crons",
      clock_kind: "virtual",
      clock_now: now,
      crons: [
        {
          name: "digest",
          function: "daily_digest",
          schedule: { type: "interval", minutes: 5 },
          schedule_text: "every 5 minutes",
          nextRun: now + 180_000,
          lastRun: { scheduledTime: now - 120_000, completedTime: now - 119_000, state: "failed", error: "boom" },
        },
      ],
    });
    const el = document.createElement("div");
    const cleanup = mount(model, el);
    const cells = el.querySelectorAll("tbody tr td");
    expect(cells[3]?.textContent).toBe(`${localTime(now + 180_000)} (in 3 min)`);
    const last = el.querySelector("td.cl-last-run");
    expect(last?.querySelector(".cl-time")?.textContent).toBe(`${localTime(now - 120_000)} (2 min ago)`);
    expect(last?.textContent).toContain("boom");
    expect(el.querySelector(".cl-clock")?.textContent).toBe(`virtual clock: ${localTime(now)}`);
    // no second format (ISO / UTC) on screen: UTC is in the tooltips only
    expect(el.textContent).not.toMatch(/\d{4}-\d\d-\d\dT\d\d:\d\d/);
    expect(last?.querySelector(".cl-time")?.getAttribute("title")).toBe(new Date(now - 120_000).toISOString());
    expect(relative(now - 120_000, now)).toBe("2 min ago");
    cleanup();
  });
});
