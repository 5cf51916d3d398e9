/**
 * Which task ends this page notifies (notify.ts shows them). Pure rules, and the one
 * read of the shell they need, so node tests run them without a DOM.
 *
 * A task is this user's here when it was launched from this browser's panel (the model
 * knows), or from a notebook open in this JupyterLab: its `origin.kernel_id` is the kernel
 * of a document open here (its session, as the service manager lists it), or its
 * `origin.path` is such a document. Read when the task ends: a walk over the open
 * documents, true to what the user has open then.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';

import { contentsPath } from './paths';
import type { ITask } from './types';

/** The `notifications` setting (schema/plugin.json). */
export type NotifyMode = 'all' | 'failures' | 'off';

export const NOTIFY_MODES: readonly NotifyMode[] = ['all', 'failures', 'off'];

/** A setting's value as a mode; anything else is the default, `all`. */
export function notifyMode(value: unknown): NotifyMode {
  return NOTIFY_MODES.includes(value as NotifyMode)
    ? (value as NotifyMode)
    : 'all';
}

/** Whether an end is notified under `mode`: `failures` are failed and cancelled tasks. */
export function worthNotifying(task: ITask, mode: NotifyMode): boolean {
  return mode === 'all' || (mode === 'failures' && task.state !== 'finished');
}

/** The kernels and paths of the documents open in this page. */
export interface IOpenOrigins {
  kernels: Set<string>;
  paths: Set<string>;
}

/** Whether `task` was launched by one of `open` (a pure rule, tested alone). */
export function launchedFrom(
  task: ITask,
  open: IOpenOrigins,
  serverRoot: string
): boolean {
  const { kernel_id, path } = task.origin;
  if (kernel_id && open.kernels.has(kernel_id)) {
    return true;
  }
  return !!path && open.paths.has(contentsPath(path, serverRoot));
}

/** The kernels and paths of the documents (notebooks, consoles) open in `app`'s shell. */
export function openOrigins(app: JupyterFrontEnd): IOpenOrigins {
  const kernels = new Set<string>();
  const paths = new Set<string>();
  for (const widget of app.shell.widgets('main')) {
    // Document widgets carry a context (path, session); other panels do not.
    const context = (widget as any).context;
    if (typeof context?.path === 'string') {
      paths.add(context.path);
    }
    const kernelId = (context?.sessionContext ?? (widget as any).sessionContext)
      ?.session?.kernel?.id;
    if (typeof kernelId === 'string') {
      kernels.add(kernelId);
    }
  }
  // The service manager's sessions of those documents: a kernel the document's own
  // session context has not caught up with yet (just started, or changed).
  for (const session of app.serviceManager.sessions.running()) {
    if (paths.has(session.path) && session.kernel?.id) {
      kernels.add(session.kernel.id);
    }
  }
  return { kernels, paths };
}
