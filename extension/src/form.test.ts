import { describe, expect, it } from "vitest";

import { argsForm, constraintText } from "./lib/form";
import type { FieldJson, ValidatorJson } from "./protocol";

// What `v.from_pydantic(Signup).to_json()` sends for
// `email: str = Field(description="Your email", pattern=".+@.+")`,
// `age: int = Field(ge=13, le=120, default=18)`.
const SIGNUP: ValidatorJson = {
  type: "object",
  value: {
    email: {
      fieldType: { type: "string" },
      optional: false,
      constraints: { pattern: ".+@.+" },
      description: "Your email",
    },
    age: { fieldType: { type: "bigint" }, optional: true, constraints: { minimum: 13, maximum: 120 }, default: 18 },
    note: { fieldType: { type: "string" }, optional: true },
  },
};

describe("the function runner's form shows a pydantic model's constraints", () => {
  it("reads limits and defaults as a person would", () => {
    const fields = (SIGNUP as { value: Record<string, FieldJson> }).value;
    const field = (name: string): FieldJson => fields[name] as FieldJson;
    expect(constraintText(field("age"))).toBe("≥ 13, ≤ 120, default 18");
    expect(constraintText(field("email"))).toBe("matches .+@.+");
    expect(constraintText(field("note"))).toBe("");
  });

  it("labels each field with its type, limits and description", () => {
    const { el } = argsForm(SIGNUP);
    const [email, age, note] = [...el.querySelectorAll("label.cl-form-label")] as HTMLElement[];
    expect([email, age, note].map((l) => l?.querySelector(".cl-field-name")?.textContent)).toEqual([
      "email",
      "age",
      "note",
    ]);
    expect(age?.querySelector(".cl-constraints")?.textContent).toBe("≥ 13, ≤ 120, default 18");
    expect(email?.querySelector(".cl-description")?.textContent).toBe("Your email");
    expect(email?.getAttribute("title")).toBe("Your email");
    expect(note?.querySelector(".cl-constraints")).toBeNull();
  });
});
