/**
 * Icons as inline SVG (stroke = the text colour), so they render the same everywhere: an emoji
 * such as U+1F5D1 needs an emoji font, which a plain Linux (Debian's chromium) lacks, and then
 * shows an empty box. Every icon button has an accessible label; the SVG itself is hidden from
 * assistive technology.
 */

import { button } from "./dom";

const SVG = "http://www.w3.org/2000/svg";

/** Path data on a 16×16 grid, drawn with a 1.5 px round stroke. */
const PATHS = {
  // a bin: lid, handle, body and two slats
  trash: ["M2.5 4h11", "M6 4V2.5h4V4", "M3.8 4l.8 9.5h6.8l.8-9.5", "M6.6 6.5v5", "M9.4 6.5v5"],
  // a circular arrow, open at the top right, with its head
  reload: ["M13 8a5 5 0 1 1-1.5-3.6", "M13 2.5v3h-3"],
} as const;

export type IconName = keyof typeof PATHS;

export function icon(name: IconName): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "14");
  svg.setAttribute("height", "14");
  svg.setAttribute("fill", "none");
  svg.setAttribute("stroke", "currentColor");
  svg.setAttribute("stroke-width", "1.5");
  svg.setAttribute("stroke-linecap", "round");
  svg.setAttribute("stroke-linejoin", "round");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", `cl-svg-icon cl-icon-${name}`);
  for (const d of PATHS[name]) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.appendChild(path);
  }
  return svg;
}

/** A button showing only `name`'s icon; `label` is its accessible name and tooltip. */
export function iconButton(name: IconName, label: string, onClick: () => void, extraClass = ""): HTMLButtonElement {
  const b = button("", onClick, { class: `cl-button cl-icon-button ${extraClass}`.trim(), title: label, "aria-label": label });
  b.appendChild(icon(name));
  return b;
}

/** The views' reload button. */
export function reloadButton(onClick: () => void, label = "reload"): HTMLButtonElement {
  return iconButton("reload", label, onClick);
}
