import { describe, expect, it } from "vitest";
import { mount } from "../index";
import { FakeModel, answer, base, tick } from "../test_model";
import { DEBOUNCE_MS } from "./search_box";

const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function searchModel(): FakeModel {
  return new FakeModel({
    ...base,
    _view: "search_box",
    path: "searchMessages",
    arg: "text",
    placeholder: "Search messages",
    text: "hel",
    has_value: true,
    value: [{ _id: "a1", body: "hello world" }],
  });
}

describe("search_box view", () => {
  it("shows the results, sends the typed text once typing pauses, and follows new results", async () => {
    const model = searchModel();
    const el = document.createElement("div");
    const cleanup = mount(model, el);
    const input = el.querySelector<HTMLInputElement>("input.cl-search-input");
    expect(input?.value).toBe("hel");
    expect(input?.placeholder).toBe("Search messages");
    expect([...el.querySelectorAll("td")].map((td) => td.textContent)).toContain("hello world");

    if (input) {
      input.value = "wor";
      input.dispatchEvent(new Event("input"));
      input.value = "worl";
      input.dispatchEvent(new Event("input"));
    }
    expect(model.sent).toHaveLength(0); // debounced
    await wait(DEBOUNCE_MS + 30);
    expect(model.sent).toHaveLength(1);
    expect(model.sent[0]).toMatchObject({ type: "search", text: "worl" });
    answer(model, 0, { ok: true, result: "worl" });

    // A matching message was sent: the kernel pushes new results.
    model.update({ value: [{ _id: "b2", body: "world peace" }], updated_at: Date.now() });
    await tick();
    expect(el.querySelector("td")?.textContent).toBe("b2");
    expect(el.querySelector(".cl-body")?.classList.contains("cl-flash")).toBe(true);
    model.update({ value: [] });
    await tick();
    expect(el.querySelector(".cl-body")?.textContent).toBe("No matches.");

    cleanup();
    expect(model.listeners()).toBe(0);
  });

  it("shows a failed search's error", async () => {
    const model = searchModel();
    const el = document.createElement("div");
    const cleanup = mount(model, el);
    const input = el.querySelector<HTMLInputElement>("input.cl-search-input");
    if (input) {
      input.value = "x";
      input.dispatchEvent(new Event("input"));
    }
    await wait(DEBOUNCE_MS + 30);
    answer(model, 0, { ok: false, error: { name: "ProtocolError", message: "bad request" } });
    await tick();
    expect(el.querySelector(".cl-error")?.textContent).toContain("bad request");
    cleanup();
  });
});
