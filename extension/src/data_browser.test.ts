import { afterEach, describe, expect, it } from "vitest";
import { mount } from "./index";
import { FakeModel, answer, base, tick } from "./test_model";

const ID = "k57a0b1c2d3e4f5g6h7j8k9m0n1p2q3r";
const ID2 = "k57zzzzzzzzzzzzzzzzzzzzzzzzzzzzz";
const REFUSED =
  'Failed to insert or update a document in table "tasks" because it does not match the schema: ' +
  'Value does not match validator.\nPath: .n\nValue: "seven"\nValidator: v.int64()';

function browser(extra: { [key: string]: unknown } = {}): FakeModel {
  return new FakeModel({
    ...base,
    _view: "data_browser",
    tables: [{ name: "tasks", count: 2 }],
    table: "tasks",
    indexes: [
      { name: "by_creation_time", fields: [] },
      { name: "by_n", fields: ["n"] },
    ],
    index: "by_creation_time",
    order: "desc",
    filter: null,
    page_size: 25,
    page_index: 0,
    has_next: false,
    rows: [
      { _id: ID, _creationTime: 1_700_000_000_000, text: "first", n: { $int64: "1" } },
      { _id: ID2, _creationTime: 1_700_000_001_000, text: "second", n: { $int64: "2" } },
    ],
    fields: {
      text: { fieldType: { type: "string" }, optional: false },
      n: { fieldType: { type: "bigint" }, optional: false },
    },
    sortable: { _creationTime: "by_creation_time", n: "by_n" },
    ...extra,
  });
}

const mounted: (() => void)[] = [];
function show(model: FakeModel): HTMLElement {
  const el = document.createElement("div");
  document.body.appendChild(el); // focus (editing) needs a connected element
  const cleanup = mount(model, el);
  mounted.push(() => {
    cleanup();
    el.remove();
  });
  return el;
}
afterEach(() => mounted.splice(0).forEach((c) => c()));

function columnIndex(el: HTMLElement, name: string): number {
  return [...el.querySelectorAll("thead th")].findIndex((th) => th.textContent?.replace(/[↑↓ ]/g, "") === name);
}

function cellOf(el: HTMLElement, docId: string, column: string): HTMLTableCellElement {
  const row = [...el.querySelectorAll<HTMLTableRowElement>("tbody tr:not(.cl-row-error)")].find(
    (tr) => tr.querySelector("td.cl-id")?.getAttribute("title") === docId,
  );
  const td = row?.cells[columnIndex(el, column)];
  if (td === undefined) throw new Error(`no cell ${column} of ${docId}`);
  return td;
}

function typeInto(td: HTMLTableCellElement, text: string, key = "Enter"): void {
  td.dispatchEvent(new MouseEvent("dblclick", { bubbles: true }));
  const input = td.querySelector("input");
  if (input === null) throw new Error("no input after a double-click");
  input.value = text;
  input.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true }));
}

describe("data browser: editing", () => {
  it("shows an edit at once as pending, rolls a refused one back and keeps its error on screen until an edit succeeds", async () => {
    const model = browser();
    const el = show(model);
    typeInto(cellOf(el, ID, "n"), "seven");
    // "seven" is not an int64: sent as typed, so that the schema names the problem
    expect(model.sent[0]).toMatchObject({ type: "edit", doc_id: ID, field: "n", value: "seven" });
    const pending = cellOf(el, ID, "n");
    expect(pending.classList.contains("cl-pending")).toBe(true);
    expect(pending.getAttribute("aria-busy")).toBe("true");
    expect(pending.textContent).toBe("seven saving…");

    answer(model, 0, { ok: false, error: { name: "SchemaValidationError", message: REFUSED } });
    await tick();
    const rolledBack = cellOf(el, ID, "n");
    expect(rolledBack.textContent).toBe("1n");
    expect(rolledBack.classList.contains("cl-pending")).toBe(false);
    expect(rolledBack.classList.contains("cl-cell-error")).toBe(true);
    // the error is a row of its own right under the document, as text (not a tooltip)
    const errorRow = rolledBack.closest("tr")?.nextElementSibling;
    expect(errorRow?.classList.contains("cl-row-error")).toBe(true);
    expect(errorRow?.querySelector("[role=alert]")?.textContent).toContain("n: not saved.");
    expect(errorRow?.textContent).toContain('Value: "seven"');
    expect(errorRow?.textContent).toContain("Validator: v.int64()");
    expect(el.querySelectorAll(".cl-row-error")).toHaveLength(1);

    // a later update of the page (another commit) keeps the error
    model.update({ rows: [...(model.get("rows") as object[])], updated_at: 1 });
    await tick();
    expect(el.querySelectorAll(".cl-row-error")).toHaveLength(1);

    typeInto(cellOf(el, ID, "n"), "7");
    expect(model.sent[1]).toMatchObject({ type: "edit", doc_id: ID, field: "n", value: { $int64: "7" } });
    model.update({
      rows: [
        { _id: ID, _creationTime: 1_700_000_000_000, text: "first", n: { $int64: "7" } },
        { _id: ID2, _creationTime: 1_700_000_001_000, text: "second", n: { $int64: "2" } },
      ],
    });
    answer(model, 1, { ok: true, result: null });
    await tick();
    expect(el.querySelector(".cl-row-error")).toBeNull();
    expect(cellOf(el, ID, "n").textContent).toBe("7n");
    expect(cellOf(el, ID, "n").classList.contains("cl-cell-error")).toBe(false);
  });

  it("says on screen, next to the field, why typed text does not fit a field without a schema", async () => {
    const model = browser({ fields: {}, rows: [{ _id: ID, _creationTime: 1_700_000_000_000, score: 5 }] });
    const el = show(model);
    typeInto(cellOf(el, ID, "score"), "abc");
    expect(model.sent).toHaveLength(0); // nothing to send: it is not a number
    const input = cellOf(el, ID, "score").querySelector("input");
    expect(input?.value).toBe("abc"); // kept, to be fixed
    const message = el.querySelector(".cl-row-error [role=alert]")?.textContent ?? "";
    expect(message).toContain('"abc" is not a number');
    expect(message).toContain("score: not saved.");
    input?.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    await tick();
    expect(el.querySelector(".cl-row-error")).toBeNull();
    expect(cellOf(el, ID, "score").textContent).toBe("5");
  });

  it("does not redraw under a cell being edited, and catches up when the edit ends", async () => {
    const model = browser();
    const el = show(model);
    const td = cellOf(el, ID, "text");
    td.dispatchEvent(new MouseEvent("dblclick", { bubbles: true }));
    const input = td.querySelector("input");
    expect(document.activeElement).toBe(input);
    model.update({ rows: [{ _id: ID, _creationTime: 1_700_000_000_000, text: "changed elsewhere", n: { $int64: "1" } }] });
    await tick();
    expect(input?.isConnected).toBe(true); // what is being typed survives, on the page
    expect(el.contains(input ?? null)).toBe(true);
    input?.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    await tick();
    expect(cellOf(el, ID, "text").textContent).toBe("changed elsewhere");
  });
});

describe("data browser: sorting by column header", () => {
  it("marks the sorted column, sorts indexed fields and explains the others on screen", async () => {
    const model = browser();
    const el = show(model);
    const header = (name: string): HTMLTableCellElement => {
      const th = el.querySelectorAll<HTMLTableCellElement>("thead th")[columnIndex(el, name)];
      if (th === undefined) throw new Error(`no header ${name}`);
      return th;
    };
    expect(header("_creationTime").getAttribute("aria-sort")).toBe("descending");
    expect(header("_creationTime").textContent).toBe("_creationTime ↓");
    expect(header("n").getAttribute("aria-sort")).toBe("none");
    expect(header("text").hasAttribute("aria-sort")).toBe(false);
    expect(header("text").querySelector("button")?.title).toContain("no index starts with text");

    header("n").querySelector("button")?.click();
    expect(model.sent[0]).toMatchObject({ type: "sort", field: "n" });
    expect(Object.keys(model.sent[0] ?? {}).sort()).toEqual(["field", "id", "type"]); // names only, never code
    answer(model, 0, { ok: true, result: { index: "by_n", order: "asc" } });
    model.update({ index: "by_n", order: "asc" });
    await tick();
    expect(header("n").getAttribute("aria-sort")).toBe("ascending");
    expect(header("n").textContent).toBe("n ↑");
    expect(header("_creationTime").getAttribute("aria-sort")).toBe("none");

    header("text").querySelector("button")?.click();
    expect(model.sent[1]).toMatchObject({ type: "sort", field: "text" });
    const why = "Cannot sort 'tasks' by 'text': Convex orders documents only through an index, ...";
    answer(model, 1, { ok: false, error: { name: "ProtocolError", message: why } });
    await tick();
    expect(el.querySelector(".cl-notice")?.textContent).toBe(why);
    expect(el.querySelector(".cl-error")).toBeNull(); // a notice, not a failure of the page
  });
});

describe("data browser: delete", () => {
  it("is an SVG icon with an accessible label, asks once more, then sends delete", () => {
    const model = browser();
    const el = show(model);
    const del = cellOf(el, ID, "_id").closest("tr")?.querySelector<HTMLButtonElement>("button.cl-delete");
    expect(del?.querySelector("svg path")).not.toBeNull();
    expect(del?.textContent).toBe(""); // no glyph that needs a font
    // nothing in the view needs an emoji font (Debian's chromium has none: U+1F5D1 was a box)
    expect(el.textContent).not.toMatch(/\p{Extended_Pictographic}/u);
    expect(del?.getAttribute("aria-label")).toBe("delete document k57a0b…2q3r");
    del?.click();
    expect(del?.textContent).toBe("Delete?");
    expect(del?.getAttribute("aria-label")).toBe("confirm: delete document k57a0b…2q3r");
    expect(model.sent).toHaveLength(0);
    del?.click();
    expect(model.sent[0]).toMatchObject({ type: "delete", doc_id: ID });
  });
});
