/**
 * Inputs generated from validator JSON, and text → display-JSON parsing.
 *
 * Strings, numbers, int64, booleans, ids, literals and unions of literals get their own input;
 * arrays, objects, records, bytes, `any` and other unions get a JSON textarea (tagged values such
 * as {"$int64": "5"} allowed). Values are only shaped here: the kernel validates them.
 */

import type { FieldJson, ValidatorJson, Wire } from "../protocol";
import { h } from "./dom";
import { internalToWire, isObject, scalarText, tagOf } from "./values";

/** A value that could not be parsed from what was typed. */
export class InputError extends Error {}

/** The literal options of a literal or a union of literals, else null. */
export function literalOptions(v: ValidatorJson): Wire[] | null {
  if (v.type === "literal") return [internalToWire(v.value)];
  if (v.type === "union" && v.value.length > 0 && v.value.every((m) => m.type === "literal")) {
    return v.value.map((m) => (m.type === "literal" ? internalToWire(m.value) : null));
  }
  return null;
}

/** A short type hint: `string`, `int64`, `Id<"users">`, `"a" | "b"`, `JSON`. */
export function typeHint(v: ValidatorJson): string {
  switch (v.type) {
    case "number":
      return "float64";
    case "bigint":
      return "int64";
    case "id":
      return `Id<"${v.tableName}">`;
    case "array":
      return `${typeHint(v.value)}[]`;
    case "object":
    case "record":
      return "object (JSON)";
    case "literal":
    case "union": {
      const options = literalOptions(v);
      return options ? options.map((o) => scalarText(o, true)).join(" | ") : "union (JSON)";
    }
    default:
      return v.type;
  }
}

function parseNumber(text: string): Wire {
  const t = text.trim();
  if (t === "NaN" || t === "Infinity" || t === "-Infinity") return { $float: t };
  if (t === "-0") return { $float: "-0" };
  const n = Number(t);
  if (t === "" || !Number.isFinite(n)) throw new InputError(`"${text}" is not a number`);
  return n;
}

function parseJson(text: string): Wire {
  try {
    return JSON.parse(text) as Wire;
  } catch {
    throw new InputError(`not valid JSON: ${text.length > 40 ? text.slice(0, 40) + "…" : text}`);
  }
}

/** Typed text → a display-JSON value for validator `v` (null: no schema, inferred as `any`). */
export function parseText(text: string, v: ValidatorJson | null): Wire {
  const type = v?.type ?? "any";
  switch (type) {
    case "string":
      return text;
    case "id":
      return text.trim();
    case "number":
      return parseNumber(text);
    case "bigint": {
      const t = text.trim().replace(/n$/, "");
      if (!/^-?\d+$/.test(t)) throw new InputError(`"${text}" is not an integer (int64)`);
      return { $int64: BigInt(t).toString() };
    }
    case "boolean":
      if (text.trim() === "true") return true;
      if (text.trim() === "false") return false;
      throw new InputError(`"${text}" is not true or false`);
    case "null":
      if (text.trim() === "null" || text.trim() === "") return null;
      throw new InputError(`"${text}" is not null`);
    case "any":
      try {
        return JSON.parse(text) as Wire;
      } catch {
        return text; // free text in an untyped field is a string
      }
    default: {
      const options = v ? literalOptions(v) : null;
      if (options) {
        const hit = options.find((o) => scalarText(o) === text || scalarText(o, true) === text);
        if (hit === undefined) throw new InputError(`"${text}" is not one of ${typeHint(v as ValidatorJson)}`);
        return hit;
      }
      return parseJson(text);
    }
  }
}

/** The text to edit `value` as (inverse of parseText for the same validator). */
export function editText(value: Wire | undefined, v: ValidatorJson | null): string {
  if (value === undefined) return "";
  if (typeof value === "string" && (v === null || v.type !== "any")) return value;
  if (tagOf(value) === "$int64" && isObject(value)) return String(value["$int64"]);
  if (tagOf(value) === "$float" && isObject(value)) return String(value["$float"]);
  if (typeof value === "number" || typeof value === "boolean" || value === null) return String(value);
  return JSON.stringify(value);
}

/** The validator to edit a field with: the schema's, else inferred from its current value. */
export function inferValidator(value: Wire | undefined): ValidatorJson {
  if (typeof value === "string") return { type: "string" };
  if (typeof value === "number") return { type: "number" };
  if (typeof value === "boolean") return { type: "boolean" };
  if (tagOf(value ?? null) === "$int64") return { type: "bigint" };
  return { type: "any" };
}

/** One form control. `read()` → the value, `undefined` for an omitted optional field. */
export interface Control {
  el: HTMLElement;
  read(): Wire | undefined;
}

const OMIT = "\u0000omit";

const CONSTRAINT_TEXT: { [keyword: string]: string } = {
  minimum: "≥",
  maximum: "≤",
  exclusiveMinimum: ">",
  exclusiveMaximum: "<",
  minLength: "length ≥",
  maxLength: "length ≤",
  minItems: "items ≥",
  maxItems: "items ≤",
  multipleOf: "multiple of",
  pattern: "matches",
  format: "format",
};

/** A field's limits as a person reads them ("≥ 13, ≤ 120, default 18"), or "" without any. */
export function constraintText(field: FieldJson): string {
  const parts: string[] = [];
  for (const [keyword, value] of Object.entries(field.constraints ?? {})) {
    const shown = typeof value === "string" ? value : JSON.stringify(value);
    parts.push(`${CONSTRAINT_TEXT[keyword] ?? keyword} ${shown}`);
  }
  if (field.default !== undefined) parts.push(`default ${JSON.stringify(field.default)}`);
  return parts.join(", ");
}

export function control(name: string, field: FieldJson): Control {
  const v = field.fieldType;
  const options = literalOptions(v) ?? (v.type === "boolean" ? [true, false] : null);
  if (options) {
    const select = h("select", { class: "cl-input", name });
    if (field.optional) select.appendChild(h("option", { value: OMIT }, "(omit)"));
    options.forEach((o, i) => select.appendChild(h("option", { value: String(i) }, scalarText(o, true))));
    return {
      el: select,
      read: () => (select.value === OMIT ? undefined : options[Number(select.value)]),
    };
  }
  if (v.type === "null") {
    return { el: h("span", { class: "cl-v-null" }, "null"), read: () => null };
  }
  const multiline = !["string", "number", "bigint", "id"].includes(v.type);
  const placeholder =
    v.type === "array" ? "[ … ] (JSON)" : multiline ? "JSON" : v.type === "id" ? `Id<"${"tableName" in v ? v.tableName : ""}">` : typeHint(v);
  const input = multiline
    ? h("textarea", { class: "cl-input cl-json-input", name, rows: 2, placeholder, spellcheck: "false" })
    : h("input", { class: "cl-input", name, type: "text", placeholder, spellcheck: "false" });
  return {
    el: input,
    read: () => {
      if (input.value === "" && field.optional) return undefined;
      return parseText(input.value, v);
    },
  };
}

/** A form for an args validator (null: unvalidated, one JSON textarea for the whole object). */
export function argsForm(args: ValidatorJson | null): { el: HTMLElement; read(): { [key: string]: Wire } } {
  if (args === null || args.type !== "object") {
    const area = h("textarea", { class: "cl-input cl-json-input", rows: 3, spellcheck: "false" });
    area.value = "{}";
    const el = h("div", { class: "cl-form" }, h("label", { class: "cl-form-label" }, "args (JSON object)"), area);
    return {
      el,
      read: () => {
        const value = parseJson(area.value.trim() === "" ? "{}" : area.value);
        if (!isObject(value) || tagOf(value) !== null) throw new InputError("args must be a JSON object");
        return value;
      },
    };
  }
  const rows = h("div", { class: "cl-form" });
  const controls: [string, Control][] = [];
  for (const [name, field] of Object.entries(args.value)) {
    const c = control(name, field);
    controls.push([name, c]);
    const limits = constraintText(field);
    const label = h(
      "label",
      field.description ? { class: "cl-form-label", title: field.description } : { class: "cl-form-label" },
      h("span", { class: "cl-field-name" }, name),
      field.optional ? h("span", { class: "cl-optional" }, "?") : null,
      h("span", { class: "cl-hint" }, typeHint(field.fieldType)),
      limits ? h("span", { class: "cl-hint cl-constraints" }, limits) : null,
      field.description ? h("span", { class: "cl-hint cl-description" }, field.description) : null,
    );
    rows.append(label, c.el);
  }
  if (controls.length === 0) rows.appendChild(h("div", { class: "cl-muted" }, "no arguments"));
  return {
    el: rows,
    read: () => {
      const out: { [key: string]: Wire } = {};
      for (const [name, c] of controls) {
        let value: Wire | undefined;
        try {
          value = c.read();
        } catch (e) {
          throw new InputError(`${name}: ${e instanceof Error ? e.message : String(e)}`);
        }
        if (value !== undefined) out[name] = value;
      }
      return out;
    },
  };
}


