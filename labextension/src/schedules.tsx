/**
 * The Schedules tab: every schedule of the server, live (model.schedules), one row each:
 * name, kind, its trigger in words, when it fires next (ticking), its last run's state,
 * an Enabled switch, and Edit / Runs / Delete. "New schedule" and Edit open the form
 * (schedulesform.tsx) above the list; Runs lists the schedule's tasks in a dialog.
 */
import {
  Dialog,
  Notification,
  ReactWidget,
  showDialog
} from '@jupyterlab/apputils';
import * as React from 'react';

import { errorText } from './errors';
import { ScheduleForm } from './schedulesform';
import { elapsed } from './time';
import type { IBgTasksModel } from './tokens';
import type { ISchedule, ITask } from './types';
import { fireTimeWords, nextFire, nextFireWords, triggerWords } from './words';

async function attempt(
  what: string,
  fn: () => Promise<unknown>
): Promise<void> {
  try {
    await fn();
  } catch (error) {
    Notification.error(`Could not ${what}: ${errorText(error)}`, {
      autoClose: 8000
    });
  }
}

async function confirmDelete(schedule: ISchedule): Promise<boolean> {
  const result = await showDialog({
    title: 'Delete this schedule?',
    body:
      `"${schedule.name}" will not run again. Its past runs stay in the history, ` +
      'and a run going on now goes on.',
    buttons: [
      Dialog.cancelButton({ label: 'Keep it' }),
      Dialog.warnButton({ label: 'Delete schedule' })
    ]
  });
  return result.button.accept;
}

/** The ids and states of a schedule's live runs: when this changes, re-read its runs. */
function liveKey(model: IBgTasksModel, scheduleId: string): string {
  return model
    .tasks('pending')
    .filter(t => t.schedule_id === scheduleId)
    .map(t => `${t.id}:${t.state}`)
    .join(',');
}

/** A schedule's runs, newest first; re-read when one starts or ends. */
export function RunsView(props: {
  model: IBgTasksModel;
  schedule: ISchedule;
}): JSX.Element {
  const { model, schedule } = props;
  const [runs, setRuns] = React.useState<ITask[] | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [now, setNow] = React.useState(Date.now());

  React.useEffect(() => {
    let key: string | null = null;
    let stopped = false;
    const read = (): void => {
      const current = liveKey(model, schedule.id);
      if (current === key) {
        return;
      }
      key = current;
      model.schedules.runs(schedule.id).then(
        tasks => {
          if (!stopped) {
            setRuns(tasks);
            setError(null);
          }
        },
        e => !stopped && setError(errorText(e))
      );
    };
    read();
    model.changed.connect(read);
    const ticker = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      stopped = true;
      model.changed.disconnect(read);
      clearInterval(ticker);
    };
  }, [schedule.id]);

  if (error) {
    return <div className="jp-BgTasks-message jp-mod-error">{error}</div>;
  }
  if (!runs) {
    return <div className="jp-BgTasks-message">Loading…</div>;
  }
  if (!runs.length) {
    return <div className="jp-BgTasks-message">No run yet.</div>;
  }
  return (
    <table className="jp-BgTasks-runs">
      <thead>
        <tr>
          <th>Due</th>
          <th>State</th>
          <th>Late by</th>
          <th>Time</th>
        </tr>
      </thead>
      <tbody>
        {runs.map(task => {
          const due = task.scheduled_for ? Date.parse(task.scheduled_for) : NaN;
          const started = task.started_at ? Date.parse(task.started_at) : NaN;
          return (
            <tr key={task.id} data-task-id={task.id} data-state={task.state}>
              <td>
                {task.scheduled_for
                  ? fireTimeWords(task.scheduled_for)
                  : fireTimeWords(task.created_at)}
              </td>
              <td>
                <span
                  className={`jp-BgTasks-state jp-BgTasks-state-${task.state}`}
                >
                  {task.state}
                </span>
              </td>
              <td>
                {isNaN(due) || isNaN(started)
                  ? ''
                  : `${Math.max(0, started - due)} ms`}
              </td>
              <td>{elapsed(task, now)}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function showRuns(model: IBgTasksModel, schedule: ISchedule): Promise<unknown> {
  const body = ReactWidget.create(
    <RunsView model={model} schedule={schedule} />
  );
  return showDialog({
    title: `Runs: ${schedule.name}`,
    body,
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}

function ScheduleRow(props: {
  model: IBgTasksModel;
  schedule: ISchedule;
  now: number;
  onEdit: (schedule: ISchedule) => void;
}): JSX.Element {
  const { model, schedule, now } = props;
  // The schedule's record says how its last run stood when it fired; the task list
  // follows that run to its end (a run's end changes no schedule).
  const last = schedule.last_run
    ? {
        ...schedule.last_run,
        state:
          model.task(schedule.last_run.id)?.state ?? schedule.last_run.state
      }
    : null;
  const next = nextFire(schedule, now);
  const toggle = (): void =>
    void attempt(
      schedule.enabled ? 'disable the schedule' : 'enable the schedule',
      () => model.schedules.update(schedule.id, { enabled: !schedule.enabled })
    );
  return (
    <li
      className="jp-BgTasks-row jp-BgTasks-scheduleRow"
      data-schedule-id={schedule.id}
      data-enabled={schedule.enabled}
      aria-label={schedule.name}
    >
      <div className="jp-BgTasks-rowHead">
        <span
          className="jp-BgTasks-name"
          title={`${schedule.name} (${schedule.id})`}
        >
          {schedule.name}
        </span>
        <span className="jp-BgTasks-kind" title="kind">
          {schedule.kind}
        </span>
        {last ? (
          <span
            className={`jp-BgTasks-state jp-BgTasks-state-${last.state}`}
            title="state of its last run"
          >
            {last.state}
          </span>
        ) : (
          <span className="jp-BgTasks-lastRun jp-mod-none">no run yet</span>
        )}
      </div>
      <div className="jp-BgTasks-meta">
        <span
          className="jp-BgTasks-triggerWords"
          title={triggerWords(schedule)}
        >
          {triggerWords(schedule)}
        </span>
        <span
          className="jp-BgTasks-next"
          title={
            next === null ? '' : fireTimeWords(new Date(next).toISOString())
          }
        >
          {schedule.enabled && next !== null ? 'next ' : ''}
          {nextFireWords(schedule, now)}
        </span>
      </div>
      <div className="jp-BgTasks-actions">
        <label
          className="jp-BgTasks-switch"
          title={
            schedule.enabled
              ? 'Enabled: click to stop its runs'
              : 'Disabled: click to run it again'
          }
        >
          <input
            type="checkbox"
            role="switch"
            checked={schedule.enabled}
            aria-label="Enabled"
            onChange={toggle}
          />
          Enabled
        </label>
        <button
          type="button"
          className="jp-BgTasks-action"
          title="Change its trigger, parameters or policies"
          onClick={() => props.onEdit(schedule)}
        >
          Edit
        </button>
        <button
          type="button"
          className="jp-BgTasks-action"
          title="The tasks it started"
          onClick={() => void showRuns(model, schedule)}
        >
          Runs
        </button>
        <button
          type="button"
          className="jp-BgTasks-action jp-mod-warn"
          title="Stop it for good (its runs stay in the history)"
          onClick={() =>
            void attempt('delete the schedule', async () => {
              if (await confirmDelete(schedule)) {
                await model.schedules.remove(schedule.id);
              }
            })
          }
        >
          Delete
        </button>
      </div>
    </li>
  );
}

/** The Schedules tab's content (the panel re-renders it on each change and tick). */
export function SchedulesTab(props: {
  model: IBgTasksModel;
  now: number;
}): JSX.Element {
  const { model, now } = props;
  const schedules = model.schedules;
  // null: no form; 'new': "New schedule"; an id: Edit of that schedule.
  const [form, setForm] = React.useState<string | null>(null);
  const editing = form && form !== 'new' ? schedules.get(form) : undefined;
  const list = schedules.list();

  if (!schedules.available) {
    return (
      <div className="jp-BgTasks-message jp-BgTasks-empty">
        This server has no schedules (jupyter-bgtasks is older there).
      </div>
    );
  }
  return (
    <>
      <div className="jp-BgTasks-tabBar">
        <button
          type="button"
          className="jp-Button jp-mod-styled jp-BgTasks-newSchedule"
          onClick={() => setForm(form === 'new' ? null : 'new')}
        >
          {form === 'new' ? 'Hide form' : 'New schedule'}
        </button>
      </div>
      {form === 'new' || editing ? (
        <ScheduleForm
          key={form!}
          model={model}
          schedule={editing}
          onClose={() => setForm(null)}
          onDone={() => setForm(null)}
        />
      ) : null}
      {schedules.error ? (
        <div className="jp-BgTasks-message jp-mod-error" role="alert">
          Could not read the schedules: {schedules.error}
          {model.status === 'polling' ? ' Retrying…' : ''}
        </div>
      ) : null}
      {list.length ? (
        <ul className="jp-BgTasks-rows">
          {list.map(schedule => (
            <ScheduleRow
              key={schedule.id}
              model={model}
              schedule={schedule}
              now={now}
              onEdit={s => setForm(s.id)}
            />
          ))}
        </ul>
      ) : !schedules.known ? (
        <div className="jp-BgTasks-message">Loading…</div>
      ) : (
        <div className="jp-BgTasks-message jp-BgTasks-empty">
          No schedule yet. Make one with “New schedule”, or with %%bgtask
          --every in a notebook.
        </div>
      )}
    </>
  );
}
