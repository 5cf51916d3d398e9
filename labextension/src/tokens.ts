/** Tokens, interfaces and command ids other plugins (and the browser tests) can rely on. */
import { Token } from '@lumino/coreutils';
import type { ISignal } from '@lumino/signaling';

import type { IDisposable } from '@lumino/disposable';

import type { ConnectionStatus } from './connection';
import type { LogListener } from './logs';
import type { ITasksApi } from './request';
import type {
  Category,
  ICreateSchedule,
  ICreateTask,
  ISchedule,
  IScheduleChanges,
  ISchedulePreview,
  ITask
} from './types';

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

  /** The server's schedules, kept live from the same events connection. */
  readonly schedules: IBgSchedules;

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

/**
 * The schedules of the server (`SchedulesModel` in schedulesmodel.ts): kept live from
 * the events websocket, read over REST at start and while it is down.
 */
export interface IBgSchedules {
  /** The list, its load state or availability changed. */
  readonly changed: ISignal<IBgSchedules, void>;
  /** The server has the `schedules` routes (false after a 404: an older server). */
  readonly available: boolean;
  /** A REST read is on its way. */
  readonly loading: boolean;
  /** Why the last REST read failed (null: it did not). */
  readonly error: string | null;
  /** A full list arrived: an empty `list()` means there are none. */
  readonly known: boolean;
  /** Every schedule, by name. */
  list(): ISchedule[];
  get(id: string): ISchedule | undefined;
  /** Read every schedule over REST. */
  refresh(): Promise<void>;
  create(body: ICreateSchedule): Promise<ISchedule>;
  /** Validate and compute the next fire times, storing nothing (a 400 names the field). */
  check(body: ICreateSchedule): Promise<ISchedulePreview>;
  update(id: string, changes: IScheduleChanges): Promise<ISchedule>;
  /** Delete it (its runs stay in the history). */
  remove(id: string): Promise<void>;
  /** Its runs, newest first (`GET tasks?schedule_id=`). */
  runs(id: string, limit?: number): Promise<ITask[]>;
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
  /**
   * "Run in background": a notebook file as a `notebook` task (args: `path`, or
   * `from: 'filebrowser'` for the file browser's selection; else the current notebook).
   */
  export const runNotebook = 'bgtasks:run-notebook';
}
