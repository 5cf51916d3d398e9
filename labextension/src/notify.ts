/**
 * JupyterLab notifications when a task of this user's ends: one launched from this
 * browser's panel, or from a notebook open in this JupyterLab (`isLocal`). The user
 * setting `notifications` (schema/plugin.json) says which ends are worth one: `all`,
 * `failures` (failed or cancelled) or `off`. The rules are in endings.ts.
 */
import { Notification } from '@jupyterlab/apputils';

import { showError, showLog } from './dialogs';
import { NotifyMode, worthNotifying } from './endings';
import type { IBgTasksModel } from './tokens';
import type { ITask } from './types';

export namespace EndNotifier {
  export interface IOptions {
    openPanel: () => void;
    /** Whether the task came from a notebook open in this JupyterLab. */
    isLocal: (task: ITask) => boolean;
    /**
     * The `notifications` setting; `null` while it loads: ends are held until it is
     * known, so an "off" user never sees one.
     */
    mode?: NotifyMode | null;
  }
}

export class EndNotifier {
  constructor(model: IBgTasksModel, options: EndNotifier.IOptions) {
    this._model = model;
    this._options = options;
    this._mode = options.mode === undefined ? 'all' : options.mode;
    // Launched from the panel: the model knows, even when the end came before the reply.
    model.taskEnded.connect((_, task) => this.onEnded(task));
    model.ended.connect((_, task) => {
      if (!model.isMine(task.id) && options.isLocal(task)) {
        this.onEnded(task);
      }
    });
  }

  /** The `notifications` setting (`null`: not known yet). */
  get mode(): NotifyMode | null {
    return this._mode;
  }

  set mode(mode: NotifyMode | null) {
    this._mode = mode;
    if (mode !== null) {
      const held = this._held.splice(0);
      held.forEach(task => this.onEnded(task));
    }
  }

  private onEnded(task: ITask): void {
    if (this._mode === null) {
      this._held.push(task);
      return;
    }
    if (this._notified.has(task.id) || !worthNotifying(task, this._mode)) {
      return;
    }
    this._notified.add(task.id);
    const model = this._model;
    const actions: Notification.IAction[] = [
      { label: 'Show log', callback: () => void showLog(model, task) },
      { label: 'Open panel', callback: this._options.openPanel }
    ];
    if (task.state === 'finished') {
      Notification.success(`Task “${task.name}” finished.`, {
        autoClose: 5000,
        actions
      });
    } else {
      const why = task.error ? `: ${task.error.message}` : '.';
      Notification.error(`Task “${task.name}” ${task.state}${why}`, {
        autoClose: 10000,
        actions: task.error
          ? [
              { label: 'Show error', callback: () => void showError(task) },
              ...actions
            ]
          : actions
      });
    }
  }

  private _model: IBgTasksModel;
  private _options: EndNotifier.IOptions;
  private _mode: NotifyMode | null;
  private _held: ITask[] = [];
  private _notified = new Set<string>();
}
