/** Tokens and command ids other plugins (and the browser tests) can rely on. */
import { Token } from '@lumino/coreutils';

import type { TasksModel } from './model';

/** The one task model of the page: the events connection and the task list. */
export const IBgTasksModel = new Token<TasksModel>(
  'jupyter-bgtasks:model',
  'The background tasks of this server, kept live over the events websocket.'
);

/** Id of the sidebar panel (`app.shell.activateById`). */
export const PANEL_ID = 'jp-bgtasks-panel';

export namespace CommandIDs {
  /** Show the "Background Tasks" panel. */
  export const openPanel = 'bgtasks:open-panel';
  /** Show the panel's "New task" form. */
  export const newTask = 'bgtasks:new-task';
}
