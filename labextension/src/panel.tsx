/**
 * The "Background Tasks" sidebar: tabs Pending · Failed · Finished · Schedules over the
 * model's task list, rows with their actions, and the "New task" form. It renders from
 * the model's signals only (no Reload button), and only while it is visible.
 */
import { Notification, ReactWidget } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { confirmCancel, showError, showLog } from './dialogs';
import { errorText } from './errors';
import { NewTaskForm } from './newtask';
import { SchedulesTab } from './schedules';
import { IRowActions, TaskRow } from './taskrow';
import { IBgTasksModel, PANEL_ID } from './tokens';
import { Category, ITask } from './types';

type Tab = Category | 'schedules';

const TABS: { id: Tab; label: string }[] = [
  { id: 'pending', label: 'Pending' },
  { id: 'failed', label: 'Failed' },
  { id: 'finished', label: 'Finished' },
  { id: 'schedules', label: 'Schedules' }
];

/** Rows rendered at first, and added per "Show more": long lists stay smooth. */
export const ROWS_PER_PAGE = 200;

const EMPTY: Record<Category, string> = {
  pending:
    'No task is waiting or running. Start one with “New task”, or with %%bgtask in a notebook.',
  failed: 'No failed or cancelled task. Good.',
  finished: 'No finished task yet.'
};

export namespace TasksPanel {
  export interface IOptions {
    model: IBgTasksModel;
    /** Open a notebook (the app's `docmanager:open`). */
    openPath: (path: string) => void;
  }
}

export class TasksPanel extends ReactWidget {
  constructor(options: TasksPanel.IOptions) {
    super();
    this.model = options.model;
    this.id = PANEL_ID;
    this.addClass('jp-BgTasks');
    this.title.caption = 'Background Tasks';
    this._actions = this.makeActions(options.openPath);
    this.model.changed.connect(this.onModelChanged, this);
    this.model.schedules.changed.connect(this.onModelChanged, this);
  }

  readonly model: IBgTasksModel;

  /** Show a tab (or the form). */
  select(tab: Tab, newTask = false): void {
    this._tab = tab;
    this._newTask = newTask;
    this.update();
  }

  /** Open the "New task" form. */
  showNewTask(): void {
    this.select(this._tab, true);
  }

  dispose(): void {
    clearInterval(this._ticker);
    this.model.changed.disconnect(this.onModelChanged, this);
    this.model.schedules.changed.disconnect(this.onModelChanged, this);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    // Elapsed times tick once a second while someone can see them.
    this._ticker = setInterval(() => {
      this._now = Date.now();
      if (
        // The Schedules tab counts down to each next run.
        this._tab === 'schedules' ||
        this.model
          .tasks(this._tab as Category)
          ?.some(t => t.started_at && !t.finished_at)
      ) {
        this.update();
      }
    }, 1000);
    this.update();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    clearInterval(this._ticker);
  }

  protected onUpdateRequest(msg: Message): void {
    // Hidden: skip the work; onAfterShow renders the latest state.
    if (this.isVisible) {
      super.onUpdateRequest(msg);
    }
  }

  protected render(): JSX.Element {
    const model = this.model;
    const status = model.status;
    return (
      <div className="jp-BgTasks-body">
        <div className="jp-BgTasks-header">
          <h2 className="jp-BgTasks-title">Background Tasks</h2>
          <span
            className={`jp-BgTasks-connection jp-mod-${status}`}
            data-status={status}
            role="status"
            aria-label={status}
            title={
              status === 'live'
                ? 'Live: changes arrive as they happen'
                : status === 'polling'
                  ? 'Reconnecting; meanwhile the list is refreshed every few seconds'
                  : 'Connecting…'
            }
          />
          <button
            type="button"
            className="jp-Button jp-mod-styled jp-mod-accept jp-BgTasks-newButton"
            onClick={() => this.select(this._tab, !this._newTask)}
          >
            {this._newTask ? 'Hide form' : 'New task'}
          </button>
        </div>
        {this._newTask ? (
          <NewTaskForm
            model={model}
            onClose={() => this.select(this._tab, false)}
            onCreated={task => {
              this._visible.pending = ROWS_PER_PAGE;
              this.select(task.category, false);
            }}
          />
        ) : null}
        <div className="jp-BgTasks-tabs" role="tablist">
          {TABS.map(tab => {
            // Only the live tab gets a count: the history tabs are read page by
            // page, so theirs would be partial.
            const count = tab.id === 'pending' ? model.tasks(tab.id).length : 0;
            return (
              <button
                key={tab.id}
                type="button"
                role="tab"
                aria-selected={this._tab === tab.id}
                className={`jp-BgTasks-tab${this._tab === tab.id ? ' jp-mod-current' : ''}`}
                data-tab={tab.id}
                onClick={() => this.select(tab.id, this._newTask)}
              >
                {tab.label}
                {count ? (
                  <span className="jp-BgTasks-count">{count}</span>
                ) : null}
              </button>
            );
          })}
        </div>
        <div className="jp-BgTasks-list" role="tabpanel" data-tab={this._tab}>
          {this._tab === 'schedules' ? (
            <SchedulesTab model={model} now={this._now} />
          ) : (
            this.renderTab(this._tab)
          )}
        </div>
      </div>
    );
  }

  private renderTab(category: Category): JSX.Element {
    const tasks = this.model.tasks(category);
    const state = this.model.tab(category);
    const shown = this._visible[category] ?? ROWS_PER_PAGE;
    const rows = tasks.slice(0, shown);
    const canShowMore = tasks.length > shown || state.hasMore;
    return (
      <>
        {state.error ? (
          <div className="jp-BgTasks-message jp-mod-error" role="alert">
            Could not reach the task server: {state.error}
            {this.model.status === 'polling' ? ' Retrying…' : ''}
          </div>
        ) : null}
        {rows.length ? (
          <ul className="jp-BgTasks-rows">
            {rows.map(task => (
              <TaskRow
                key={task.id}
                task={task}
                actions={this._actions}
                now={this._now}
              />
            ))}
          </ul>
        ) : state.loading || this.model.status === 'connecting' ? (
          <div className="jp-BgTasks-message">Loading…</div>
        ) : state.error ? null : (
          <div className="jp-BgTasks-message jp-BgTasks-empty">
            {EMPTY[category]}
          </div>
        )}
        {canShowMore ? (
          <button
            type="button"
            className="jp-Button jp-mod-styled jp-BgTasks-more"
            disabled={state.loading}
            onClick={() => void this.showMore(category)}
          >
            {state.loading ? 'Loading…' : `Show more (${rows.length} shown)`}
          </button>
        ) : null}
      </>
    );
  }

  private async showMore(category: Category): Promise<void> {
    const shown = this._visible[category] ?? ROWS_PER_PAGE;
    this._visible[category] = shown + ROWS_PER_PAGE;
    if (this.model.tasks(category).length < shown + ROWS_PER_PAGE) {
      await this.model.loadMore(category);
    }
    this.update();
  }

  private onModelChanged(): void {
    this.update();
  }

  private makeActions(openPath: (path: string) => void): IRowActions {
    const model = this.model;
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (error) {
        Notification.error(`Could not ${what}: ${errorText(error)}`, {
          autoClose: 8000
        });
      }
    };
    return {
      cancel: (task: ITask) =>
        void attempt('cancel the task', async () => {
          if (await confirmCancel(task)) {
            await model.cancel(task.id);
          }
        }),
      remove: (task: ITask) =>
        void attempt('delete the task', () => model.remove(task.id)),
      retry: (task: ITask) =>
        void attempt('start the task again', async () => {
          await model.retry(task);
          this.select('pending');
        }),
      showLog: (task: ITask) => void showLog(model, task),
      showError: (task: ITask) => void showError(task),
      openPath
    };
  }

  private _tab: Tab = 'pending';
  private _newTask = false;
  private _visible: Partial<Record<Category, number>> = {};
  private _now = Date.now();
  private _ticker: ReturnType<typeof setInterval> | undefined;
  private _actions: IRowActions;
}
