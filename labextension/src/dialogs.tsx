/**
 * The panel's dialogs, in JupyterLab's own `showDialog`: the cancel warning, the live
 * log and the error with its traceback.
 */
import { Dialog, ReactWidget, showDialog } from '@jupyterlab/apputils';
import * as React from 'react';

import { errorText } from './errors';
import type { IBgTasksModel } from './tokens';
import { ITask, LIVE_STATES } from './types';

/** The SPEC's warning; true when the user confirms. */
export async function confirmCancel(task: ITask): Promise<boolean> {
  const running = task.state !== 'pending';
  const body = running
    ? `"${task.name}" is running. Cancelling stops it, and nothing it did is undone: ` +
      'files it wrote, rows it changed and messages it sent stay as they are.'
    : `"${task.name}" has not started yet. Cancelling means it will not run.`;
  const result = await showDialog({
    title: 'Cancel this task?',
    body,
    buttons: [
      Dialog.cancelButton({ label: 'Keep it' }),
      Dialog.warnButton({ label: 'Cancel task' })
    ]
  });
  return result.button.accept;
}

/** Live log of a task: reads `GET log?offset=` until the task has ended. */
export function LogView(props: {
  model: IBgTasksModel;
  taskId: string;
  interval?: number;
}): JSX.Element {
  const { model, taskId } = props;
  const [text, setText] = React.useState('');
  const [error, setError] = React.useState<string | null>(null);
  const [done, setDone] = React.useState(false);
  const pre = React.useRef<HTMLPreElement>(null);

  React.useEffect(() => {
    let offset = 0;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async (): Promise<void> => {
      // Read the state before the log: a task that has ended has written all of it.
      const task = model.task(taskId);
      const ended = !task || !LIVE_STATES.has(task.state);
      try {
        let more = true;
        while (more && !stopped) {
          const chunk = await model.api.log(taskId, offset);
          if (chunk.text) {
            setText(t => t + chunk.text);
          }
          more = chunk.next_offset > offset && chunk.text.length > 0;
          offset = chunk.next_offset;
          if (!ended) {
            break;
          }
        }
        setError(null);
      } catch (e) {
        setError(errorText(e));
      }
      if (ended) {
        setDone(true);
      } else if (!stopped) {
        timer = setTimeout(tick, props.interval ?? 1000);
      }
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [taskId]);

  React.useEffect(() => {
    const el = pre.current;
    if (el) {
      el.scrollTop = el.scrollHeight;
    }
  }, [text]);

  return (
    <div className="jp-BgTasks-log">
      <pre ref={pre} className="jp-BgTasks-logText" data-done={done}>
        {text || (done ? 'This task printed nothing.' : 'Waiting for output…')}
      </pre>
      <div className="jp-BgTasks-logStatus">
        {error ? `Could not read the log: ${error}` : done ? 'Task ended.' : 'Live…'}
      </div>
    </div>
  );
}

export function showLog(model: IBgTasksModel, task: ITask): Promise<unknown> {
  const body = ReactWidget.create(<LogView model={model} taskId={task.id} />);
  return showDialog({
    title: `Log: ${task.name}`,
    body,
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}

export function showError(task: ITask): Promise<unknown> {
  const error = task.error;
  const body = ReactWidget.create(
    <div className="jp-BgTasks-error">
      <p className="jp-BgTasks-errorMessage">
        {error ? `${error.type}: ${error.message}` : `The task ended ${task.state}.`}
        {error?.reason ? ` (${error.reason})` : ''}
      </p>
      {error?.traceback ? (
        <pre className="jp-BgTasks-traceback">{error.traceback}</pre>
      ) : null}
    </div>
  );
  return showDialog({
    title: `Error: ${task.name}`,
    body,
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}
