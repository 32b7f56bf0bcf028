/**
 * Views JupyterLab dropped without disposing them.
 *
 * The kernel re-sends a widget's output after a cell changes it (so a saved notebook holds the
 * latest text/html fallback). JupyterLab then builds a new view of the same model and takes the
 * old one's element out of the page without disposing the view, which would otherwise go on
 * listening to the model and re-rendering. Each mount first disposes the views whose element was
 * on the page once and now has no parent. A view in a cell that JupyterLab's windowing took off
 * the page keeps its parent (the cell's own node goes, not the view's element), so it survives.
 */

interface Mounted {
  el: HTMLElement;
  seen: boolean;
  dispose: () => void;
}

const mounted = new Set<Mounted>();

/** Dispose every view whose element was shown once and has since been dropped. */
export function sweep(): void {
  for (const entry of mounted) {
    if (entry.seen && entry.el.parentNode === null) {
      mounted.delete(entry);
      entry.dispose();
    }
  }
}

/** Track a newly mounted view; returns its cleanup, which also stops tracking it. */
export function track(el: HTMLElement, dispose: () => void): () => void {
  sweep();
  const entry: Mounted = { el, seen: false, dispose };
  mounted.add(entry);
  setTimeout(() => {
    if (el.isConnected) entry.seen = true;
  }, 0);
  return () => {
    if (mounted.delete(entry)) dispose();
  };
}

/** How many views are tracked (tests). */
export function trackedCount(): number {
  return mounted.size;
}
