import { describe, expect, it } from "vitest";
import { mount } from "../index";
import { FakeModel, base, tick } from "../test_model";
import { isFileUrl } from "./upload_previews";

const FILE = "http://127.0.0.1:41234/api/storage/0aqw5eyyjfy98rq9xxqz1r6za4v0xwg/7qLSWX5YrBiW_JkLlJQwdQ";

describe("upload view", () => {
  it("shows the picker with its filter and the outcome of earlier uploads", () => {
    const model = new FakeModel({
      ...base,
      _view: "upload",
      path: "saveFile",
      accept: "image/*",
      multiple: true,
      uploads: [
        { name: "cat.png", size: 2048, status: "saved", storageId: "s1", error: null },
        { name: "big.bin", size: 0, status: "error", storageId: null, error: "too big" },
      ],
    });
    const el = document.createElement("div");
    const cleanup = mount(model, el);
    const input = el.querySelector<HTMLInputElement>("input[type=file]");
    expect(input?.accept).toBe("image/*");
    expect(input?.multiple).toBe(true);
    const items = [...el.querySelectorAll("li.cl-upload-item")].map((li) => li.textContent);
    expect(items).toEqual(["✓ cat.png (2.0 KiB)", "✗ big.bin — too big"]);
    cleanup();
    expect(model.listeners()).toBe(0);
  });
});

describe("upload_previews view", () => {
  it("recognises only file URLs of a backend", () => {
    expect(isFileUrl(FILE)).toBe(true);
    expect(isFileUrl("http://127.0.0.1:1/api/storage/upload?token=x")).toBe(false);
    expect(isFileUrl("https://example.com/cat.png")).toBe(false);
    expect(isFileUrl(5)).toBe(false);
  });

  it("turns file URL cells into thumbnails and follows new values", async () => {
    const model = new FakeModel({
      ...base,
      _view: "upload_previews",
      path: "listFiles",
      args: {},
      has_value: true,
      value: [{ _id: "f1", name: "cat.png", url: FILE }],
    });
    const el = document.createElement("div");
    const cleanup = mount(model, el);
    const img = el.querySelector<HTMLImageElement>("td.cl-file img.cl-thumb");
    expect(img?.getAttribute("src")).toBe(FILE);
    expect(el.querySelector("td.cl-file a")?.getAttribute("href")).toBe(FILE);
    model.update({ value: [{ _id: "f1", name: "cat.png", url: null }] });
    await tick();
    expect(el.querySelector("img.cl-thumb")).toBeNull();
    cleanup();
    expect(model.listeners()).toBe(0);
  });
});
