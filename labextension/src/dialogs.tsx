/**
 * The panel's dialogs, in JupyterLab's own `showDialog`: the cancel warning, the live
 * log (pushed over the events websocket) and the error with its traceback.
 */
import { Dialog, ReactWidget, showDialog } from '@jupyterlab/apputils';
import * as React from 'react';

import type { IBgTasksModel } from './tokens';
import { ITask } from './types';

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

/** How close to the bottom (px) counts as "at the newest line". */
const AT_BOTTOM = 8;

/**
 * Live log of a task, pushed over the events websocket (`follow_log`, model.followLog)
 * until the task's end. It keeps the newest line in view, unless the user scrolled up to
 * read something: then it stays where it is until they scroll back down.
 */
export function LogView(props: {
  model: IBgTasksModel;
  taskId: string;
}): JSX.Element {
  const { model, taskId } = props;
  const [text, setText] = React.useState('');
  const [error, setError] = React.useState<string | null>(null);
  const [done, setDone] = React.useState(false);
  const [status, setStatus] = React.useState(model.status);
  const pre = React.useRef<HTMLPreElement>(null);
  const atBottom = React.useRef(true);

  React.useEffect(() => {
    let offset = 0;
    const follow = model.followLog(taskId, 0, update => {
      if ('error' in update) {
        setError(update.error);
        setDone(true);
        return;
      }
      // A start past what we have: the head was trimmed by the server's cap.
      const trimmed = update.offset > offset;
      offset = update.next_offset;
      setText(t => (trimmed ? update.text : t + update.text));
      if (update.end) {
        setDone(true);
      }
    });
    const onChange = (): void => setStatus(model.status);
    model.changed.connect(onChange);
    return () => {
      follow.dispose();
      model.changed.disconnect(onChange);
    };
  }, [taskId]);

  React.useLayoutEffect(() => {
    const el = pre.current;
    if (el && atBottom.current) {
      el.scrollTop = el.scrollHeight;
    }
  }, [text]);

  const onScroll = (): void => {
    const el = pre.current;
    if (el) {
      atBottom.current =
        el.scrollHeight - el.scrollTop - el.clientHeight <= AT_BOTTOM;
    }
  };

  const live = status === 'live' ? 'Live…' : 'Reconnecting…';
  return (
    <div className="jp-BgTasks-log">
      <pre
        ref={pre}
        className="jp-BgTasks-logText"
        data-done={done}
        onScroll={onScroll}
      >
        {text || (done ? 'This task printed nothing.' : 'Waiting for output…')}
      </pre>
      <div className="jp-BgTasks-logStatus">
        {error
          ? `Could not follow the log: ${error}`
          : done
            ? 'Task ended.'
            : live}
      </div>
    </div>
  );
}

export function showLog(model: IBgTasksModel, task: ITask): Promise<unknown> {
  const body = ReactWidget.create(<LogView model={model} taskId={task.id} />);
  // The text fills the dialog and scrolls by itself (style: .jp-BgTasks-logDialog), so
  // its newest line is never hidden below the dialog body's own fold.
  body.addClass('jp-BgTasks-logBody');
  const dialog = new Dialog({
    title: `Log: ${task.name}`,
    body,
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
  dialog.addClass('jp-BgTasks-logDialog');
  return dialog.launch();
}

export function showError(task: ITask): Promise<unknown> {
  const error = task.error;
  const body = ReactWidget.create(
    <div className="jp-BgTasks-error">
      <p className="jp-BgTasks-errorMessage">
        {error
          ? `${error.type}: ${error.message}`
          : `The task ended ${task.state}.`}
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
