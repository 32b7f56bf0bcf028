import { describe, expect, it, vi } from "vitest";
import { sweep, track, trackedCount } from "./lib/sweep";

describe("sweep of dropped views", () => {
  it("disposes a view whose element was shown and then dropped, and keeps the others", async () => {
    vi.useFakeTimers();
    const page = document.createElement("div");
    document.body.appendChild(page);
    const shown = document.createElement("div");
    const kept = document.createElement("div");
    page.append(shown, kept);
    const disposed: string[] = [];
    track(shown, () => disposed.push("shown"));
    const stopKept = track(kept, () => disposed.push("kept"));
    vi.runAllTimers(); // both were on the page a tick after mounting
    shown.remove(); // JupyterLab replaced that output
    sweep();
    expect(disposed).toEqual(["shown"]);
    // A view in a cell taken off the page (windowing) keeps its parent: not disposed.
    page.remove();
    sweep();
    expect(disposed).toEqual(["shown"]);
    stopKept();
    expect(disposed).toEqual(["shown", "kept"]);
    expect(trackedCount()).toBe(0);
    vi.useRealTimers();
  });

  it("does not dispose a view that was never on the page", () => {
    const detached = document.createElement("div");
    const disposed: string[] = [];
    const stop = track(detached, () => disposed.push("x"));
    sweep();
    expect(disposed).toEqual([]);
    stop();
  });
});
