import { describe, expect, it } from "vitest";
import { mount } from "./index";
import { FakeModel, base, tick } from "./test_model";
import { parseText } from "./lib/form";
import { jsonText, scalarText } from "./lib/values";

describe("values", () => {
  it("formats tagged values", () => {
    expect(scalarText({ $int64: "5" })).toBe("5n");
    expect(scalarText({ $bytes: "AP8=" })).toBe("bytes(2)");
    expect(jsonText({ a: [1, { $float: "NaN" }] })).toBe('{"a": [1, NaN]}');
  });
  it("parses text by validator", () => {
    expect(parseText("12", { type: "bigint" })).toEqual({ $int64: "12" });
    expect(parseText("1.5", { type: "number" })).toBe(1.5);
    expect(parseText("hello", { type: "any" })).toBe("hello");
    expect(parseText("[1]", { type: "array", value: { type: "number" } })).toEqual([1]);
    expect(() => parseText("x", { type: "number" })).toThrow();
  });
});

describe("live_query view", () => {
  it("shows documents as a table and pairs every on with an off", async () => {
    const model = new FakeModel({
      ...base,
      _view: "live_query",
      path: "tasks:list",
      args: {},
      rendered: false,
      html: "",
      has_value: true,
      value: [{ _id: "abcdefghijklmnopqrstuvwxyz", _creationTime: 1700000000000, n: { $int64: "3" } }],
    });
    const el = document.createElement("div");
    const cleanup = mount(model, el);
    const cells = [...el.querySelectorAll("td")].map((td) => td.textContent);
    expect(cells[0]).toBe("abcdef…wxyz");
    expect(el.querySelector("td.cl-id")?.getAttribute("title")).toBe("abcdefghijklmnopqrstuvwxyz");
    expect(cells).toContain("3n");
    model.update({ value: [{ _id: "x", n: 1 }], updated_at: Date.now() });
    await tick();
    expect(el.querySelector(".cl-body")?.classList.contains("cl-flash")).toBe(true);
    model.update({ status: "error", error: { name: "ConvexError", message: "boom" } });
    await tick();
    expect(el.querySelector(".cl-error")?.textContent).toContain("boom");
    expect(el.querySelector("td")?.textContent).toBe("x"); // the last good value stays
    expect(model.listeners()).toBeGreaterThan(0);
    cleanup();
    expect(model.listeners()).toBe(0);
  });
});

describe("function_runner view", () => {
  it("sends a run request built from the form and resolves its response", async () => {
    const model = new FakeModel({
      ...base,
      _view: "function_runner",
      functions: [
        {
          path: "add",
          kind: "mutation",
          visibility: "public",
          args: { type: "object", value: { n: { fieldType: { type: "bigint" }, optional: false } } },
        },
      ],
      selected: "add",
      result: null,
      lines: [],
      duration_ms: null,
      last_path: "",
      allow_internal: true,
    });
    const el = document.createElement("div");
    const cleanup = mount(model, el);
    const input = el.querySelector<HTMLInputElement>("input[name=n]");
    expect(input).not.toBeNull();
    if (input) input.value = "42";
    el.querySelector<HTMLButtonElement>("button.cl-primary")?.click();
    const request = model.sent[0];
    expect(request).toMatchObject({ type: "run", path: "add", args: { n: { $int64: "42" } } });
    model.emit("msg:custom", { type: "response", id: request?.["id"], ok: true, result: 43 });
    await tick();
    cleanup();
    expect(model.listeners()).toBe(0);
  });
});

describe("jobs and crons views", () => {
  const job = (id: string, state: string, extra: { [key: string]: unknown } = {}): { [key: string]: unknown } => ({
    id,
    name: "send_reminder",
    creationTime: 1_700_000_000_000,
    scheduledTime: 1_700_000_600_000,
    completedTime: null,
    state,
    error: null,
    args: { text: "tea" },
    ...extra,
  });

  it("colours states, shows errors and sends cancel for a pending job", async () => {
    const model = new FakeModel({
      ...base,
      _view: "jobs",
      clock_kind: "virtual",
      clock_now: 1_700_000_000_000,
      total: 2,
      counts: { pending: 1, failed: 1 },
      rows: [job("j1", "pending"), job("j2", "failed", { error: "boom", completedTime: 1_700_000_600_000 })],
      limit: 200,
    });
    const el = document.createElement("div");
    const cleanup = mount(model, el);
    const rows = [...el.querySelectorAll("tbody tr")];
    expect(rows.map((r) => r.getAttribute("data-state"))).toEqual(["pending", "failed"]);
    expect(rows[0]?.textContent).toContain("(in 10 min)");
    expect(rows[0]?.textContent).toContain('{"text": "tea"}');
    expect(rows[1]?.querySelector(".cl-log-error")?.textContent).toBe("boom");
    rows[0]?.querySelector<HTMLButtonElement>("button.cl-danger")?.click();
    expect(model.sent[0]).toMatchObject({ type: "cancel", job_id: "j1" });
    expect(rows[1]?.querySelector("button.cl-danger")).toBeNull();
    model.update({ rows: [job("j1", "canceled")], total: 1, counts: { canceled: 1 } });
    await tick();
    expect(el.querySelector("tbody tr")?.getAttribute("data-state")).toBe("canceled");
    cleanup();
    expect(model.listeners()).toBe(0);
  });

  it("lists crons with the schedule in words and the next run", () => {
    const model = new FakeModel({
      ...base,
      _view: "crons",
      clock_kind: "virtual",
      clock_now: 1_700_000_000_000,
      crons: [
        {
          name: "digest",
          function: "daily_digest",
          schedule: { type: "daily", hourUTC: 9, minuteUTC: 0 },
          schedule_text: "daily at 09:00 UTC",
          nextRun: 1_700_000_180_000,
          lastRun: null,
        },
      ],
    });
    const el = document.createElement("div");
    const cleanup = mount(model, el);
    const text = el.querySelector("tbody tr")?.textContent ?? "";
    expect(text).toContain("daily at 09:00 UTC");
    expect(text).toContain("(in 3 min)");
    expect(text).toContain("never ran");
    cleanup();
    expect(model.listeners()).toBe(0);
  });
});
