/**
 * The mime renderer of a task's cell output (`application/vnd.bgtasks.task+json`).
 *
 * The kernel displays one bundle: this mime type (the task id), the ipywidgets widget
 * (for front ends without this extension) and a text line. Registered on the app's
 * rendermime registry, which every notebook clones, with a rank below ipywidgets' (-10),
 * so where this extension runs the output is this view, fed by the page's task model,
 * and never the kernel's widget: no comm, so nothing waits for a busy kernel, and a
 * saved notebook shows its tasks live again after a reload or a kernel restart.
 *
 * `safe`: it writes only text (React escapes it) and runs nothing from the output, so
 * untrusted notebooks get it too.
 */
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import { ITaskBundle, parseBundle } from './cellstate';
import { TaskCellView } from './cellview';
import type { IBgTasksModel } from './tokens';

/** The mime type of a task's cell output. */
export const TASK_MIME = 'application/vnd.bgtasks.task+json';

/** Below ipywidgets' -10 (lower is preferred): ours wins where both can render. */
export const TASK_RANK = -20;

/** One task output: a React view of the task the bundle names. */
export class TaskCellRenderer
  extends ReactWidget
  implements IRenderMime.IRenderer
{
  constructor(
    private readonly _model: IBgTasksModel,
    private readonly _mimeType: string
  ) {
    super();
    this.addClass('jp-BgTasks-cellOutput');
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this._bundle = parseBundle(model.data[this._mimeType]);
    this._trusted = model.trusted;
    this.update();
    return Promise.resolve();
  }

  protected render(): React.ReactElement | null {
    const bundle = this._bundle;
    if (bundle === null) {
      return null;
    }
    if (typeof bundle === 'string') {
      return React.createElement(
        'div',
        { className: 'jp-BgTasks-cell', 'data-phase': 'unreadable' },
        React.createElement(
          'div',
          { className: 'jp-BgTasks-cellMessage' },
          bundle
        )
      );
    }
    // Keyed by id: an output updated to another task starts a fresh view.
    return React.createElement(TaskCellView, {
      key: bundle.task_id,
      model: this._model,
      bundle,
      trusted: this._trusted
    });
  }

  private _bundle: ITaskBundle | string | null = null;
  private _trusted = false;
}

/** The factory registered on the app's rendermime registry (index.ts). */
export function taskRendererFactory(
  model: IBgTasksModel
): IRenderMime.IRendererFactory {
  return {
    safe: true,
    mimeTypes: [TASK_MIME],
    defaultRank: TASK_RANK,
    createRenderer: options => new TaskCellRenderer(model, options.mimeType)
  };
}
