/**
 * convex_lab widgets: one ESM bundle for every view (anywidget front-end module).
 *
 * `render` reads the `_view` trait and mounts that view in its own root element; the returned
 * cleanup removes every listener the view added (each `model.on` has its `model.off`).
 */

import "./styles.css";
import type { AnyModel, RenderProps } from "@anywidget/types";
import { get, type Model } from "./model";
import { PROTOCOL_VERSION, type ViewName } from "./protocol";
import { Rpc } from "./rpc";
import { h } from "./lib/dom";
import { track } from "./lib/sweep";
import { renderCrons } from "./views/crons";
import { renderDataBrowser } from "./views/data_browser";
import { renderFunctionRunner } from "./views/function_runner";
import { renderJobs } from "./views/jobs";
import { renderLiveQuery } from "./views/live_query";
import { renderLogs } from "./views/logs";
import { renderPaginated } from "./views/paginated";
import { renderSearchBox } from "./views/search_box";
import { renderUpload } from "./views/upload";
import { renderFilePreviews } from "./views/upload_previews";
import type { View } from "./views/types";

export const VIEWS: { [name in ViewName]: View } = {
  live_query: renderLiveQuery,
  paginated: renderPaginated,
  data_browser: renderDataBrowser,
  function_runner: renderFunctionRunner,
  logs: renderLogs,
  jobs: renderJobs,
  crons: renderCrons,
  search_box: renderSearchBox,
  upload: renderUpload,
  upload_previews: renderFilePreviews,
};

/** Mount the widget's view in `el`; returns the cleanup. */
export function mount(model: Model, el: HTMLElement): () => void {
  const root = h("div", { class: "cl-root" });
  el.appendChild(root);
  const kernelVersion = get<number>(model, "protocol_version");
  if (kernelVersion !== PROTOCOL_VERSION) {
    root.appendChild(
      h(
        "div",
        { class: "cl-error" },
        `convex_lab widget front-end speaks protocol ${PROTOCOL_VERSION} but the kernel speaks ${kernelVersion}: ` +
          "rebuild it (npm --prefix extension run build) and re-run the cell.",
      ),
    );
  }
  const name = get<string>(model, "_view");
  const view = (VIEWS as { [name: string]: View | undefined })[name];
  if (view === undefined) {
    root.appendChild(h("div", { class: "cl-error" }, `Unknown convex_lab view "${name}".`));
    return () => root.remove();
  }
  const rpc = new Rpc(model);
  const cleanup = view({ model, el: root, rpc });
  return track(el, () => {
    cleanup();
    rpc.dispose();
    root.remove();
  });
}

function render({ model, el }: RenderProps): () => void {
  return mount(model as AnyModel as Model, el);
}

export default { render };
