/** How many tasks are running, for the status bar or the top area; a click opens the panel. */
import { ReactWidget } from '@jupyterlab/apputils';
import * as React from 'react';

import { tasksIcon } from './icons';
import type { IBgTasksModel } from './tokens';

export class RunningIndicator extends ReactWidget {
  constructor(
    readonly model: IBgTasksModel,
    private readonly onOpen: () => void
  ) {
    super();
    this.addClass('jp-BgTasks-indicator');
    this.model.changed.connect(this.onChanged, this);
  }

  dispose(): void {
    this.model.changed.disconnect(this.onChanged, this);
    super.dispose();
  }

  protected render(): JSX.Element {
    const running = this.model.runningCount;
    const label = `${running} running`;
    return (
      <div
        className="jp-BgTasks-indicatorBody"
        role="button"
        tabIndex={0}
        data-running={running}
        title={`Background tasks: ${running} running. Click to open the panel.`}
        onClick={this.onOpen}
        onKeyDown={e => (e.key === 'Enter' || e.key === ' ') && this.onOpen()}
      >
        <tasksIcon.react tag="span" className="jp-BgTasks-indicatorIcon" />
        <span className="jp-BgTasks-indicatorLabel">{label}</span>
      </div>
    );
  }

  private onChanged(): void {
    // Re-render only when the count moved: progress events are frequent.
    const running = this.model.runningCount;
    if (running !== this._last) {
      this._last = running;
      this.update();
    }
  }

  private _last = -1;
}
