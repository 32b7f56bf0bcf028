import type { Model } from "../model";
import type { Rpc } from "../rpc";

export interface ViewProps {
  model: Model;
  /** The view's own root element (inside anywidget's `el`). */
  el: HTMLElement;
  rpc: Rpc;
}

export type View = (props: ViewProps) => () => void;
