/** Function runner: pick a function, fill the form generated from its args validator, Run. */

import type { FunctionInfo, ValidatorJson, Wire } from "../protocol";
import { Disposer, get } from "../model";
import { button, coalesce, flash, h, replace } from "../lib/dom";
import { argsForm } from "../lib/form";
import { reloadButton } from "../lib/icons";
import { Header, errorBox, showError, statusOf } from "../lib/status";
import { valueView } from "../lib/table";
import { durationText } from "../lib/when";
import { asWireError } from "../rpc";
import type { ViewProps } from "./types";

export function renderFunctionRunner({ model, el, rpc }: ViewProps): () => void {
  const d = new Disposer();
  const header = new Header("Run a function");
  const picker = h("select", { class: "cl-input", "aria-label": "function" });
  const reload = reloadButton(() => void rpc.request({ type: "refresh" }).catch(() => undefined), "reload the list of functions");
  const formBox = h("div", { class: "cl-form-box" });
  const inputErrors = h("div", { class: "cl-errors" });
  const runButton = button("Run", () => run(), { class: "cl-button cl-primary" });
  const meta = h("span", { class: "cl-muted" });
  const errors = h("div", { class: "cl-errors" });
  const result = h("div", { class: "cl-body" });
  const printed = h("pre", { class: "cl-lines" });
  el.append(
    header.el,
    h("div", { class: "cl-toolbar" }, picker, reload),
    formBox,
    inputErrors,
    h("div", { class: "cl-toolbar" }, runButton, meta),
    errors,
    result,
    printed,
  );
  let form: ReturnType<typeof argsForm> | null = null;
  let formKey = "";
  let shownResult: string | null = null;

  function selected(): FunctionInfo | undefined {
    const functions = get<FunctionInfo[]>(model, "functions");
    return functions.find((f) => f.path === picker.value) ?? functions[0];
  }

  function drawPicker(): void {
    const functions = get<FunctionInfo[]>(model, "functions");
    const want = picker.value || get<string>(model, "selected");
    replace(
      picker,
      ...functions.map((f) =>
        h("option", { value: f.path, selected: f.path === want }, `${f.kind} ${f.path}${f.visibility === "internal" ? " (internal)" : ""}`),
      ),
    );
    if (functions.length === 0) picker.appendChild(h("option", { value: "" }, "no functions registered"));
    drawForm();
  }

  function drawForm(): void {
    const fn = selected();
    const args: ValidatorJson | null = fn?.args ?? null;
    const key = `${fn?.path}:${JSON.stringify(args)}`;
    if (key === formKey) return; // keep what was typed while the function is unchanged
    formKey = key;
    form = fn === undefined ? null : argsForm(args);
    replace(formBox, form?.el);
    runButton.disabled = fn === undefined;
  }

  function run(): void {
    const fn = selected();
    if (fn === undefined || form === null) return;
    let args: { [key: string]: Wire };
    try {
      args = form.read();
    } catch (e) {
      replace(inputErrors, errorBox({ name: "InputError", message: e instanceof Error ? e.message : String(e) }));
      return;
    }
    replace(inputErrors);
    runButton.disabled = true;
    model.set("selected", fn.path);
    model.save_changes();
    rpc
      .request({ type: "run", path: fn.path, args }, 600_000)
      .catch((e: unknown) => {
        if (get<unknown>(model, "error") === null) replace(errors, errorBox(asWireError(e)));
      })
      .finally(() => {
        runButton.disabled = false;
      });
  }

  function drawResult(): void {
    const status = statusOf(model);
    header.show(status === "loading" ? "running" : status, get<number | null>(model, "updated_at"));
    showError(model, errors);
    const ms = get<number | null>(model, "duration_ms");
    const path = get<string>(model, "last_path");
    meta.textContent = path && ms !== null ? `${path} · ${durationText(ms)}` : "";
    const lines = get<string[]>(model, "lines");
    printed.textContent = lines.join("\n");
    printed.hidden = lines.length === 0;
    const key = status === "ready" && path ? JSON.stringify(get<Wire>(model, "result")) : "";
    if (key === shownResult) return;
    replace(result, key ? valueView(get<Wire>(model, "result")) : null);
    if (shownResult !== null && key) flash(result);
    shownResult = key;
  }

  picker.addEventListener("change", drawForm);
  drawPicker();
  drawResult();
  d.onChange(model, ["functions"], coalesce(drawPicker));
  d.onChange(model, ["status", "error", "result", "lines", "duration_ms", "last_path", "updated_at"], coalesce(drawResult));
  return () => d.dispose();
}
