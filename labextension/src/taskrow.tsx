/** One task in the panel: what it is, how far it got, and what can be done with it. */
import * as React from 'react';

import { daskDashboard, shortAddress, workerPage } from './dask';
import { executedCopy } from './notebookjob';
import { progressLabel } from './numbers';
import { retryRefusal } from './retry';
import { elapsed } from './time';
import { ITask, LIVE_STATES } from './types';

/** What a row can ask the panel to do. */
export interface IRowActions {
  cancel(task: ITask): void;
  remove(task: ITask): void;
  retry(task: ITask): void;
  showLog(task: ITask): void;
  showError(task: ITask): void;
  openPath(path: string): void;
}

function basename(path: string): string {
  const parts = path.split('/');
  return parts[parts.length - 1] || path;
}

/**
 * Where the task runs, for an executor with more than one place (`dask @ 10.0.0.5:40001`),
 * linked to that worker's page on the Dask dashboard when the server knows one.
 */
function Placement(props: { task: ITask }): JSX.Element {
  const { task } = props;
  const address = task.placement ?? '';
  const label = `${task.executor} @ ${shortAddress(address)}`;
  const dashboard = task.executor === 'dask' ? daskDashboard() : null;
  if (dashboard) {
    return (
      <a
        className="jp-BgTasks-placement"
        href={workerPage(dashboard, address)}
        target="_blank"
        rel="noopener noreferrer"
        title={`Runs on the Dask worker ${address}: open its page on the Dask dashboard`}
      >
        {label}
      </a>
    );
  }
  return (
    <span
      className="jp-BgTasks-placement"
      title={`Runs on the worker ${address}`}
    >
      {label}
    </span>
  );
}

function ProgressBar(props: { task: ITask }): JSX.Element {
  const { progress, state } = props.task;
  const fraction = progress.fraction;
  const label = progressLabel(progress);
  // Finished tasks show a full bar even when they never reported a total.
  const value = state === 'finished' ? 1 : fraction;
  return (
    <div className="jp-BgTasks-progress">
      {value === null ? (
        state === 'pending' ? (
          <progress
            className="jp-BgTasks-bar"
            max={1}
            value={0}
            aria-label="progress"
          />
        ) : (
          <progress className="jp-BgTasks-bar" aria-label="progress" />
        )
      ) : (
        <progress
          className="jp-BgTasks-bar"
          max={1}
          value={value}
          aria-label="progress"
        />
      )}
      <span className="jp-BgTasks-progressLabel">{label}</span>
    </div>
  );
}

function Action(props: {
  label: string;
  title: string;
  onClick: () => void;
  warn?: boolean;
  disabled?: boolean;
}): JSX.Element {
  return (
    <button
      type="button"
      className={`jp-BgTasks-action${props.warn ? ' jp-mod-warn' : ''}`}
      title={props.title}
      onClick={props.onClick}
      disabled={props.disabled}
    >
      {props.label}
    </button>
  );
}

function TaskRowImpl(props: {
  task: ITask;
  actions: IRowActions;
  now: number;
}): JSX.Element {
  const { task, actions, now } = props;
  const live = LIVE_STATES.has(task.state);
  const path = task.origin.path;
  const cannotRetry = retryRefusal(task);
  const copy = executedCopy(task);
  return (
    <li
      className="jp-BgTasks-row"
      data-task-id={task.id}
      data-state={task.state}
      aria-label={task.name}
    >
      <div className="jp-BgTasks-rowHead">
        <span className="jp-BgTasks-name" title={`${task.name} (${task.id})`}>
          {task.name}
        </span>
        <span className="jp-BgTasks-kind" title="kind">
          {task.kind}
        </span>
        <span className={`jp-BgTasks-state jp-BgTasks-state-${task.state}`}>
          {task.state}
        </span>
      </div>
      <ProgressBar task={task} />
      <div className="jp-BgTasks-meta">
        {path ? (
          <a
            className="jp-BgTasks-origin"
            href="#"
            title={`Open ${path}`}
            onClick={e => {
              e.preventDefault();
              actions.openPath(path);
            }}
          >
            {basename(path)}
          </a>
        ) : (
          <span className="jp-BgTasks-origin jp-mod-none">no notebook</span>
        )}
        <span className="jp-BgTasks-elapsed">{elapsed(task, now)}</span>
        {task.attempt > 1 ? (
          <span className="jp-BgTasks-attempt">attempt {task.attempt}</span>
        ) : null}
        {task.placement ? <Placement task={task} /> : null}
      </div>
      <div className="jp-BgTasks-actions">
        {live ? (
          task.state !== 'cancelling' ? (
            <Action
              label="Cancel"
              title="Stop this task (nothing it did is undone)"
              onClick={() => actions.cancel(task)}
              warn
            />
          ) : null
        ) : (
          <>
            <Action
              label="Retry"
              title={
                cannotRetry ??
                'Run it again as a new task: the same parameters and inputs'
              }
              onClick={() => actions.retry(task)}
              disabled={cannotRetry !== null}
            />
            <Action
              label="Delete"
              title="Remove it from the history"
              onClick={() => actions.remove(task)}
            />
          </>
        )}
        <Action
          label={live ? 'Show log' : 'Log'}
          title="What the task printed"
          onClick={() => actions.showLog(task)}
        />
        {task.error ? (
          <Action
            label="Show error"
            title="The error and its traceback"
            onClick={() => actions.showError(task)}
          />
        ) : null}
        {copy ? (
          <Action
            label="Open executed copy"
            title={`Open ${copy}: the notebook with this run's outputs`}
            onClick={() => actions.openPath(copy)}
          />
        ) : null}
      </div>
    </li>
  );
}

/**
 * Rows re-render only when their task record changes (the store replaces records, it
 * never mutates them) or, for live ones, when the clock ticks.
 */
export const TaskRow = React.memo(
  TaskRowImpl,
  (a, b) =>
    a.task === b.task &&
    a.actions === b.actions &&
    (a.now === b.now || !LIVE_STATES.has(b.task.state))
);
