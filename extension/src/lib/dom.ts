/** A tiny DOM builder: `h("div", {class: "x"}, child, "text")`. No framework. */

type Child = Node | string | null | undefined | false;
type Attrs = { [name: string]: string | number | boolean | null | undefined };

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = String(value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
}

/** Replace all children of `parent`. */
export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}

/** Restart the "updated" highlight on `el` (a CSS animation). */
export function flash(el: HTMLElement): void {
  el.classList.remove("cl-flash");
  void el.offsetWidth; // reflow, so that re-adding the class restarts the animation
  el.classList.add("cl-flash");
}

export function clock(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number, w = 2): string => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function button(label: string, onClick: () => void, attrs: Attrs = {}): HTMLButtonElement {
  const b = h("button", { type: "button", class: "cl-button", ...attrs }, label);
  b.addEventListener("click", onClick);
  return b;
}

/** `fn` run once per microtask however often the returned function is called (trait changes
 * that arrive in one message fire one event each). */
export function coalesce(fn: () => void): () => void {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      fn();
    });
  };
}
