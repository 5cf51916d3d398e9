/**
 * Notebook jobs in the browser's terms: the `notebook` kind's request for a saved file,
 * and where a notebook task's executed copy is. Pure rules (no JupyterLab imports), so
 * node tests run them; notebookjobs.ts wires them to commands and the panel.
 */
import type { ICreateTask, ITask } from './types';

/** The built-in kind that runs a notebook file (`bgtasks_ext/kinds/notebook.py`). */
export const NOTEBOOK_KIND = 'notebook';

/** Whether a contents path names a notebook file (what "Run in background" takes). */
export function isNotebookPath(path: string): boolean {
  return path.endsWith('.ipynb');
}

/** The last part of a `/`-separated path. */
export function fileName(path: string): string {
  const parts = path.split('/');
  return parts[parts.length - 1] || path;
}

/**
 * The `POST tasks` body that runs the notebook at `path` (relative to the server's
 * root, as the file browser names it). No name: the server names it after the file.
 * The origin is that notebook, so the row links back to it.
 */
export function notebookTaskBody(path: string): ICreateTask {
  const relative = path.replace(/^\/+/, '');
  return {
    kind: NOTEBOOK_KIND,
    params: { path: relative },
    origin: { path: relative }
  };
}

/**
 * The root-relative path of a notebook task's executed copy: the result's when it
 * finished, the error's `data` when a cell failed or it was stopped; null when there is
 * none (not a notebook task, not ended, or no copy was written).
 */
export function executedCopy(task: ITask): string | null {
  if (task.kind !== NOTEBOOK_KIND) {
    return null;
  }
  // `error.data`: what the failing code attached (the kind's `bgtasks_data`).
  const data = (
    task.error as { data?: { [key: string]: unknown } | null } | null
  )?.data;
  const candidates = [task.result_preview?.executed_copy, data?.executed_copy];
  for (const candidate of candidates) {
    if (typeof candidate === 'string' && candidate) {
      return candidate;
    }
  }
  return null;
}
