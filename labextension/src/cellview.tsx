/**
 * The task under a notebook cell, drawn from the page's own task model: its record comes
 * from the events websocket the panel uses and its Cancel is the REST route, so neither
 * waits for the kernel (busy, restarting or gone), and a reloaded notebook shows its tasks
 * live again. The view keeps no state the server lacks: the task id from the output is
 * all it starts from. What it says is computed in cellstate.ts.
 */
import * as React from 'react';

import {
  barValue,
  canCancel,
  cellTiming,
  countLine,
  ICellFacts,
  ITaskBundle,
  noteOf,
  phaseLine,
  phaseOf
} from './cellstate';
import { confirmCancel } from './dialogs';
import { errorText } from './errors';
import type { ILogFailure, ILogUpdate } from './logs';
import type { IBgTasksModel } from './tokens';
import { ITask, LIVE_STATES } from './types';

/** Characters of log a view keeps (as the kernel widget): the panel and REST have the rest. */
const LOG_TAIL = 20_000;

/**
 * One 1-second timer for every view on the page, running only while some view shows a
 * live task: elapsed and ETA move between events.
 */
class Ticker {
  add(listener: (now: number) => void): () => void {
    this._listeners.add(listener);
    if (this._timer === null) {
      this._timer = setInterval(() => {
        const now = Date.now();
        for (const l of [...this._listeners]) {
          l(now);
        }
      }, 1000);
    }
    return () => {
      this._listeners.delete(listener);
      if (this._listeners.size === 0 && this._timer !== null) {
        clearInterval(this._timer);
        this._timer = null;
      }
    };
  }

  private _listeners = new Set<(now: number) => void>();
  private _timer: ReturnType<typeof setInterval> | null = null;
}

const ticker = new Ticker();

/** How often a view whose task is still being sent asks whether the server expects it. */
const RESERVED_RECHECK_MS = 30_000;

/** The task's record from the model, its first lookup, and whether it was deleted. */
function useTask(
  model: IBgTasksModel,
  id: string
): ICellFacts & { failure: string } {
  const [facts, setFacts] = React.useState<ICellFacts & { failure: string }>(
    () => ({
      task: model.task(id),
      looked: model.task(id) ? 'found' : null,
      seen: !!model.task(id),
      failure: ''
    })
  );
  React.useEffect(() => {
    let live = true;
    let again: ReturnType<typeof setTimeout> | undefined;
    const watch = model.watch(id, task =>
      setFacts(f => ({ ...f, task, seen: f.seen || !!task }))
    );
    const look = (): void => {
      model.fetch(id).then(
        task => {
          if (live) {
            setFacts(f => ({
              ...f,
              task: model.task(id) ?? f.task,
              looked: task ? 'found' : 'absent',
              seen: f.seen || !!task
            }));
          }
        },
        error => {
          if (!live) {
            return;
          }
          if ((error as { reserved?: boolean }).reserved) {
            // Its inputs are on their way: the task's creation comes over the events
            // websocket. Ask again now and then, in case the kernel stops sending.
            setFacts(f => ({ ...f, looked: 'reserved' }));
            again = setTimeout(look, RESERVED_RECHECK_MS);
            return;
          }
          setFacts(f => ({
            ...f,
            looked: 'failed',
            failure: errorText(error)
          }));
        }
      );
    };
    look();
    return () => {
      live = false;
      clearTimeout(again);
      watch.dispose();
    };
  }, [model, id]);
  return facts;
}

/** The bar: filled to `value`, or an animated indeterminate bar for null. */
function Bar(props: { value: number | null }): JSX.Element {
  const { value } = props;
  return (
    <div
      className={`jp-BgTasks-cellBar${value === null ? ' jp-mod-indeterminate' : ''}`}
      role="progressbar"
      aria-label="progress"
      aria-valuemin={0}
      aria-valuemax={1}
      aria-valuenow={value === null ? undefined : value}
      data-value={value === null ? -1 : value}
    >
      <div
        className="jp-BgTasks-cellBarFill"
        style={value === null ? undefined : { width: `${value * 100}%` }}
      />
    </div>
  );
}

/** The live log, followed over the events websocket only while it is open. */
function LogBox(props: {
  model: IBgTasksModel;
  id: string;
  canFollow: boolean;
}): JSX.Element {
  const { model, id, canFollow } = props;
  const [open, setOpen] = React.useState(false);
  const [text, setText] = React.useState('');
  const [problem, setProblem] = React.useState('');
  const offset = React.useRef(0);
  const [done, setDone] = React.useState(false);

  React.useEffect(() => {
    if (!open || !canFollow || done) {
      return;
    }
    const follow = model.followLog(
      id,
      offset.current,
      (update: ILogUpdate | ILogFailure) => {
        if ('error' in update) {
          setProblem(update.error);
          setDone(true);
          return;
        }
        const trimmed = update.offset > offset.current;
        offset.current = Math.max(offset.current, update.next_offset);
        if (update.text || trimmed) {
          setText(old => ((trimmed ? '' : old) + update.text).slice(-LOG_TAIL));
        }
        if (update.end) {
          setDone(true);
        }
      }
    );
    return () => follow.dispose();
  }, [model, id, open, canFollow, done]);

  return (
    <details
      className="jp-BgTasks-cellLog"
      open={open}
      onToggle={e => setOpen((e.currentTarget as HTMLDetailsElement).open)}
    >
      <summary>Log</summary>
      {/* column-reverse anchors the scroll at the bottom: the newest line stays in view. */}
      <div className="jp-BgTasks-cellLogBox">
        <pre>
          {text || (done ? '(the task printed nothing)' : '')}
          {problem ? `\n(${problem})` : ''}
        </pre>
      </div>
    </details>
  );
}

/** The task's own view: state, bar, timing, Cancel, message, note, error, log. */
function TaskBody(props: {
  model: IBgTasksModel;
  task: ITask;
  bundle: ITaskBundle;
  trusted: boolean;
}): JSX.Element {
  const { model, task, bundle, trusted } = props;
  const live = LIVE_STATES.has(task.state);
  const [now, setNow] = React.useState(() => Date.now());
  const [asking, setAsking] = React.useState(false);
  const [refusal, setRefusal] = React.useState('');

  React.useEffect(() => {
    if (!live) {
      return;
    }
    setNow(Date.now());
    return ticker.add(setNow);
  }, [live]);

  const cancel = async (): Promise<void> => {
    // An output of a notebook not trusted here may name any task of this server.
    if (!trusted && !(await confirmCancel(task))) {
      return;
    }
    setAsking(true);
    setRefusal('');
    model.cancel(task.id).then(
      () => setAsking(false),
      error => {
        setAsking(false);
        setRefusal(`cancel refused: ${errorText(error)}`);
      }
    );
  };
  const cancellable = canCancel(task) && !asking;
  const message = countLine(task.progress);
  const note = noteOf(task, bundle);
  return (
    <>
      <div className="jp-BgTasks-cellHead">
        <span className="jp-BgTasks-cellName" title={`task ${task.id}`}>
          {task.name || bundle.name || task.kind}
        </span>
        <span className={`jp-BgTasks-cellState jp-mod-${task.state}`}>
          {task.state}
        </span>
        <Bar value={barValue(task)} />
        <span className="jp-BgTasks-cellTiming">{cellTiming(task, now)}</span>
        <button
          type="button"
          className="jp-BgTasks-cellCancel"
          disabled={!cancellable}
          title={
            cancellable
              ? 'Stop this task (nothing it already did is undone)'
              : live
                ? 'The task is being cancelled'
                : `The task has ended (${task.state})`
          }
          onClick={cancel}
        >
          Cancel
        </button>
      </div>
      {message ? <div className="jp-BgTasks-cellMessage">{message}</div> : null}
      {note ? <div className="jp-BgTasks-cellNote">{note}</div> : null}
      {refusal ? (
        <div className="jp-BgTasks-cellRefusal" role="alert">
          {refusal}
        </div>
      ) : null}
      {task.error ? (
        <div className="jp-BgTasks-cellError">
          <div className="jp-BgTasks-cellErrorLine">
            {task.error.type}: {task.error.message}
          </div>
          {task.error.traceback ? <pre>{task.error.traceback}</pre> : null}
        </div>
      ) : null}
      <LogBox model={model} id={task.id} canFollow={true} />
    </>
  );
}

/** The output of one task under a cell. */
export function TaskCellView(props: {
  model: IBgTasksModel;
  bundle: ITaskBundle;
  /**
   * The output is trusted (made in this session, or the notebook was trusted). An
   * untrusted notebook may name any task of this server: its Cancel asks first.
   */
  trusted?: boolean;
}): JSX.Element {
  const { model, bundle } = props;
  const trusted = props.trusted ?? false;
  const facts = useTask(model, bundle.task_id);
  const phase = phaseOf(facts, bundle);
  if (phase === 'task' && facts.task) {
    return (
      <div
        className="jp-BgTasks-cell"
        data-task-id={bundle.task_id}
        data-phase={phase}
        data-state={facts.task.state}
      >
        <TaskBody
          model={model}
          task={facts.task}
          bundle={bundle}
          trusted={trusted}
        />
      </div>
    );
  }
  const waiting = phase === 'sending' || phase === 'loading';
  const note = noteOf(undefined, bundle);
  return (
    <div
      className="jp-BgTasks-cell"
      data-task-id={bundle.task_id}
      data-phase={phase}
    >
      <div className="jp-BgTasks-cellHead">
        <span className="jp-BgTasks-cellName" title={`task ${bundle.task_id}`}>
          {bundle.name || bundle.task_id}
        </span>
        <span className={`jp-BgTasks-cellState jp-mod-${phase}`}>
          {phase === 'missing' ? 'not found' : phase}
        </span>
        {waiting ? <Bar value={null} /> : null}
        {waiting ? (
          <button
            type="button"
            className="jp-BgTasks-cellCancel"
            disabled={true}
            title={
              phase === 'sending'
                ? 'The kernel is still sending the inputs: the task is not on the server yet'
                : 'Looking the task up on the server'
            }
          >
            Cancel
          </button>
        ) : null}
      </div>
      <div className="jp-BgTasks-cellMessage">
        {phaseLine(phase, bundle, facts.failure)}
      </div>
      {note ? <div className="jp-BgTasks-cellNote">{note}</div> : null}
    </div>
  );
}
