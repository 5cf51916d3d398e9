/** JupyterLab notifications when a task launched from this browser ends. */
import { Notification } from '@jupyterlab/apputils';

import { showError, showLog } from './dialogs';
import type { IBgTasksModel } from './tokens';

export function notifyEndings(model: IBgTasksModel, openPanel: () => void): void {
  model.taskEnded.connect((_, task) => {
    const actions: Notification.IAction[] = [
      { label: 'Show log', callback: () => void showLog(model, task) },
      { label: 'Open panel', callback: openPanel }
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
          ? [{ label: 'Show error', callback: () => void showError(task) }, ...actions]
          : actions
      });
    }
  });
}
