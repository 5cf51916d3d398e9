/** Tokens, interfaces and command ids other plugins (and the browser tests) can rely on. */
import { Token } from '@lumino/coreutils';
import type { ISignal } from '@lumino/signaling';

import type { IDisposable } from '@lumino/disposable';

import type { ConnectionStatus } from './connection';
import type { LogListener } from './logs';
import type { ITasksApi } from './request';
import type { Category, ICreateTask, ITask } from './types';

/** The one task model of the page: the events connection and the task list. */
export const IBgTasksModel = new Token<IBgTasksModel>(
  'jupyter-bgtasks:model',
  'The background tasks of this server, kept live over the events websocket.'
);

/**
 * What views and other plugins may use of the task model (`TasksModel` in model.ts):
 * they depend on this, never on the class, so tests and other front ends can supply
 * their own.
 */
export interface IBgTasksModel {
  /** The REST client, for what the model does not keep (logs, kinds). */
  readonly api: ITasksApi;

  /** Something in the task list, a tab's state or the connection changed. */
  readonly changed: ISignal<IBgTasksModel, void>;

  /** A task launched from this browser finished, failed or was cancelled. */
  readonly taskEnded: ISignal<IBgTasksModel, ITask>;

  /** Any task this page saw live finished, failed or was cancelled. */
  readonly ended: ISignal<IBgTasksModel, ITask>;

  /** Whether the task was launched from this browser's panel. */
  isMine(id: string): boolean;

  /**
   * Follow a task's log from `offset`: the server pushes its text over the events
   * websocket as it grows, until the task's end (`end`) or `dispose()`.
   */
  followLog(id: string, offset: number, listener: LogListener): IDisposable;

  /** How changes are heard now: over the websocket, or by polling while it is down. */
  readonly status: ConnectionStatus;

  /** Tasks actually running (or being cancelled): the indicator's count. */
  readonly runningCount: number;

  /** The tasks of one tab, newest first. */
  tasks(category: Category): ITask[];

  task(id: string): ITask | undefined;

  /**
   * The task as the server has it now (GET, for a task the page has not seen: a cell
   * output of an old or other session), kept current from then on by the events
   * websocket; null when the server does not know it (404).
   */
  fetch(id: string): Promise<ITask | null>;

  /**
   * Hear about one task only: its new record at each change, `undefined` once it left
   * the list (deleted). Cheap for many views (see `TasksModel.watch`).
   */
  watch(id: string, listener: TaskListener): IDisposable;

  /** Load state of one tab. */
  tab(category: Category): IBgTasksModel.ITabState;

  /** Load the next REST page of a history tab. */
  loadMore(category: Category): Promise<void>;

  /** Create a task and remember it as launched from here (its end is notified). */
  create(body: ICreateTask): Promise<ITask>;

  /** Run an ended task again: a new task from its stored spec and input (server side). */
  retry(task: ITask): Promise<ITask>;

  cancel(id: string): Promise<void>;

  /** Cancel a live task, or remove a terminal one from the history. */
  remove(id: string): Promise<void>;
}

/** What `IBgTasksModel.watch` calls: the task's new record, or undefined once deleted. */
export type TaskListener = (task: ITask | undefined) => void;

export namespace IBgTasksModel {
  /** Load state of one tab. */
  export interface ITabState {
    loading: boolean;
    error: string | null;
    /** A further REST page exists (history tabs). */
    hasMore: boolean;
  }
}

/** Id of the sidebar panel (`app.shell.activateById`). */
export const PANEL_ID = 'jp-bgtasks-panel';

export namespace CommandIDs {
  /** Show the "Background Tasks" panel. */
  export const openPanel = 'bgtasks:open-panel';
  /** Show the panel's "New task" form. */
  export const newTask = 'bgtasks:new-task';
}
