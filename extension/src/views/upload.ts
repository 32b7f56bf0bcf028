/**
 * Upload widget: pick or drop files; each is uploaded the Convex way and handed to a mutation.
 *
 * For each file: `{type: "upload_url"}` → the kernel answers a fresh upload URL; the bytes are
 * POSTed there (XMLHttpRequest, for upload progress), which answers `{storageId}`; then
 * `{type: "uploaded", storageId, name, contentType, size}` → the kernel calls the mutation it was
 * given in Python. A failed upload is reported with `{type: "upload_failed", name, message}`.
 * The list under the picker shows each file's progress and outcome; the `uploads` trait keeps the
 * outcomes, so a re-rendered view shows them again.
 */

import type { Request, Wire } from "../protocol";
import { Disposer, get } from "../model";
import { coalesce, h, replace } from "../lib/dom";
import { Header, showError, statusOf } from "../lib/status";
import type { ViewProps } from "./types";

interface Upload {
  name: string;
  size: number;
  status: "uploading" | "saving" | "saved" | "error";
  storageId: string | null;
  error: string | null;
}

interface UploadRequest {
  type: "upload_url" | "uploaded" | "upload_failed";
  [key: string]: Wire;
}

/** POST `file` to `url`; resolves with the storage ID, reporting progress (0..1). */
export function postFile(url: string, file: File, onProgress: (fraction: number) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    if (file.type) xhr.setRequestHeader("Content-Type", file.type);
    xhr.upload.onprogress = (e: ProgressEvent): void => {
      if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
    };
    xhr.onerror = (): void => reject(new Error(`could not reach the upload URL (${url.split("?")[0]})`));
    xhr.onload = (): void => {
      let body: { storageId?: string; message?: string } = {};
      try {
        body = JSON.parse(xhr.responseText) as typeof body;
      } catch {
        // not JSON: reported below with the status
      }
      if (xhr.status === 200 && typeof body.storageId === "string") resolve(body.storageId);
      else reject(new Error(body.message ?? `upload failed with HTTP ${xhr.status}`));
    };
    xhr.send(file);
  });
}

function sizeText(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function renderUpload({ model, el, rpc }: ViewProps): () => void {
  const d = new Disposer();
  const header = new Header(h("span", {}, "Upload → ", h("span", { class: "cl-path" }, get<string>(model, "path"))));
  const input = h("input", {
    type: "file",
    class: "cl-upload-input",
    "aria-label": "files to upload",
    accept: get<string>(model, "accept") || null,
    multiple: get<boolean>(model, "multiple"),
  }) as HTMLInputElement;
  const zone = h(
    "label",
    {
      class: "cl-upload-zone",
      style: "display: block; border: 1px dashed #999; border-radius: 6px; padding: 10px; margin: 4px 0; cursor: pointer;",
    },
    "Choose files or drop them here ",
    input,
  );
  const errors = h("div", { class: "cl-errors" });
  const list = h("ul", { class: "cl-upload-list", style: "list-style: none; padding-left: 0; margin: 4px 0;" });
  el.append(header.el, zone, errors, list);

  // Files uploading in this view (not yet in the trait), by a local key.
  const active = new Map<string, { file: File; progress: number; status: Upload["status"]; error: string | null }>();
  let counter = 0;

  const draw = (): void => {
    header.show(statusOf(model), get<number | null>(model, "updated_at"));
    showError(model, errors);
    const done = get<Upload[]>(model, "uploads") ?? [];
    const rows: HTMLElement[] = [];
    for (const u of done) {
      const mark = u.status === "saved" ? "✓" : "✗";
      rows.push(
        h(
          "li",
          { class: `cl-upload-item cl-upload-${u.status}`, "data-status": u.status, title: u.storageId ?? "" },
          `${mark} ${u.name} `,
          h("span", { class: "cl-muted" }, u.status === "saved" ? `(${sizeText(u.size)})` : `— ${u.error ?? "failed"}`),
        ),
      );
    }
    for (const a of active.values()) {
      const bar = h("progress", { max: 1, value: a.progress, style: "width: 8em; margin: 0 6px;" });
      rows.push(
        h(
          "li",
          { class: `cl-upload-item cl-upload-${a.status}`, "data-status": a.status },
          `… ${a.file.name}`,
          bar,
          h("span", { class: "cl-muted" }, a.status === "saving" ? "saving" : `${Math.round(a.progress * 100)}%`),
        ),
      );
    }
    replace(list, ...rows);
  };
  const redraw = coalesce(draw);

  const uploadOne = async (file: File): Promise<void> => {
    counter += 1;
    const key = `${counter}`;
    const entry = { file, progress: 0, status: "uploading" as Upload["status"], error: null as string | null };
    active.set(key, entry);
    redraw();
    try {
      const answer = (await rpc.request({ type: "upload_url" } as UploadRequest as unknown as Request)) as { url: string };
      const storageId = await postFile(answer.url, file, (fraction) => {
        entry.progress = fraction;
        redraw();
      });
      entry.status = "saving";
      redraw();
      await rpc.request({
        type: "uploaded",
        storageId,
        name: file.name,
        contentType: file.type,
        size: file.size,
      } as UploadRequest as unknown as Request);
    } catch (e: unknown) {
      const message = e instanceof Error ? e.message : String(e);
      // A failure of the mutation itself is already recorded by the kernel.
      if (entry.status !== "saving") {
        await rpc
          .request({ type: "upload_failed", name: file.name, message } as UploadRequest as unknown as Request)
          .catch(() => undefined);
      }
    } finally {
      active.delete(key);
      redraw();
    }
  };

  const start = (files: FileList | null): void => {
    if (files === null) return;
    for (const file of Array.from(files)) void uploadOne(file);
    input.value = "";
  };
  const onChange = (): void => start(input.files);
  const onDragOver = (e: DragEvent): void => e.preventDefault();
  const onDrop = (e: DragEvent): void => {
    e.preventDefault();
    start(e.dataTransfer?.files ?? null);
  };
  input.addEventListener("change", onChange);
  zone.addEventListener("dragover", onDragOver);
  zone.addEventListener("drop", onDrop);
  d.add(() => {
    input.removeEventListener("change", onChange);
    zone.removeEventListener("dragover", onDragOver);
    zone.removeEventListener("drop", onDrop);
  });
  draw();
  d.onChange(model, ["uploads", "status", "error", "updated_at"], redraw);
  return () => d.dispose();
}
