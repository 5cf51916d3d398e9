/**
 * Entry point of the jupyter-bgtasks JupyterLab extension: it only wires plugins.
 *
 * - `jupyter-bgtasks:model`: the task model (events websocket, REST).
 * - `jupyter-bgtasks:plugin`: the "Background Tasks" sidebar panel and its commands; its
 *   settings (schema/plugin.json) hold `notifications`.
 * - `jupyter-bgtasks:notifications`: a notification when a task of this user's ends
 *   (launched from the panel, or from a notebook open here), as the setting says.
 * - `jupyter-bgtasks:indicator`: the running-task count in the status bar (JupyterLab), or
 *   in the top area where there is no status bar (Notebook 7).
 * - `jupyter-bgtasks:cell-view`: the renderer of a task's cell output, a live view of the
 *   server's record (cellrender.ts), preferred over the kernel's ipywidgets widget.
 * - `jupyter-bgtasks:notebook-jobs`: "Run in background" for notebook files, in the file
 *   browser's context menu and the notebook toolbar (schema/notebook-jobs.json).
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import {
  IDefaultFileBrowser,
  IFileBrowserFactory
} from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';

import { TASK_RANK, taskRendererFactory } from './cellrender';
import { launchedFrom, notifyMode, openOrigins } from './endings';

import { tasksIcon } from './icons';
import { RunningIndicator } from './indicator';
import { TasksModel } from './model';
import { addRunNotebookCommand } from './notebookjobs';
import { EndNotifier } from './notify';
import { contentsPath } from './paths';
import { TasksPanel } from './panel';
import { TasksApi } from './request';
import { CommandIDs, IBgTasksModel, PANEL_ID } from './tokens';

/** Plugin id of the panel; browser tests look it up with `jupyterapp.hasPlugin`. */
export const PLUGIN_ID = 'jupyter-bgtasks:plugin';

function openPanel(app: JupyterFrontEnd): void {
  void app.commands.execute(CommandIDs.openPanel);
}

const modelPlugin: JupyterFrontEndPlugin<IBgTasksModel> = {
  id: 'jupyter-bgtasks:model',
  description:
    'The background tasks of this server, kept live over the events websocket.',
  autoStart: true,
  provides: IBgTasksModel,
  activate: (app: JupyterFrontEnd): IBgTasksModel => {
    const api = new TasksApi(app.serviceManager.serverSettings);
    const model = new TasksModel({
      api,
      schedulesApi: api,
      storage: window.localStorage,
      standby: 'when-hidden'
    });
    model.start();
    return model;
  }
};

const notificationsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-bgtasks:notifications',
  description:
    'A notification when a task of this user ends: launched from the panel, or from a ' +
    'notebook open in this JupyterLab (setting `notifications` of jupyter-bgtasks:plugin).',
  autoStart: true,
  requires: [IBgTasksModel],
  optional: [ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    model: IBgTasksModel,
    registry: ISettingRegistry | null
  ): void => {
    const serverRoot = PageConfig.getOption('serverRoot');
    const notifier = new EndNotifier(model, {
      openPanel: () => openPanel(app),
      isLocal: task => launchedFrom(task, openOrigins(app), serverRoot),
      mode: registry ? null : 'all'
    });
    if (!registry) {
      return;
    }
    registry.load(PLUGIN_ID).then(
      settings => {
        const read = (): void => {
          notifier.mode = notifyMode(settings.get('notifications').composite);
        };
        read();
        settings.changed.connect(read);
      },
      error => {
        console.warn(
          'jupyter-bgtasks: settings not loaded; every end is notified',
          error
        );
        notifier.mode = 'all';
      }
    );
  }
};

const panelPlugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'The "Background Tasks" sidebar panel.',
  autoStart: true,
  requires: [IBgTasksModel],
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    model: IBgTasksModel,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ): void => {
    const panel = new TasksPanel({
      model,
      openPath: origin => {
        const path = contentsPath(origin, PageConfig.getOption('serverRoot'));
        if (app.commands.hasCommand('docmanager:open')) {
          void app.commands.execute('docmanager:open', { path });
        } else {
          window.open(URLExt.join(PageConfig.getBaseUrl(), 'tree', path));
        }
      }
    });
    panel.title.icon = tasksIcon;
    try {
      app.shell.add(panel, 'left', { rank: 650 });
    } catch (error) {
      // A shell without a left area (some Notebook 7 pages): the commands still work.
      console.warn('jupyter-bgtasks: no left area for the panel', error);
    }
    restorer?.add(panel, PANEL_ID);

    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'Show Background Tasks',
      icon: tasksIcon,
      execute: args => {
        app.shell.activateById(PANEL_ID);
        // `tab`: show that tab too (a launcher's "Show" of its new task).
        if (PANEL_TABS.includes(args.tab as string)) {
          panel.select(args.tab as Parameters<TasksPanel['select']>[0]);
        }
      }
    });
    app.commands.addCommand(CommandIDs.newTask, {
      label: 'New Background Task…',
      execute: () => {
        app.shell.activateById(PANEL_ID);
        panel.showNewTask();
      }
    });
    for (const command of [CommandIDs.openPanel, CommandIDs.newTask]) {
      palette?.addItem({ command, category: 'Background Tasks' });
    }
  }
};

const PANEL_TABS = ['pending', 'failed', 'finished', 'schedules'];

const notebookJobsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-bgtasks:notebook-jobs',
  description:
    '"Run in background" for notebook files: the file browser\'s context menu and the ' +
    'notebook toolbar (places declared in schema/notebook-jobs.json).',
  autoStart: true,
  requires: [IBgTasksModel],
  optional: [
    INotebookTracker,
    IDocumentManager,
    IFileBrowserFactory,
    IDefaultFileBrowser,
    ICommandPalette
  ],
  activate: (
    app: JupyterFrontEnd,
    model: IBgTasksModel,
    notebooks: INotebookTracker | null,
    docManager: IDocumentManager | null,
    browsers: IFileBrowserFactory | null,
    defaultBrowser: IDefaultFileBrowser | null,
    palette: ICommandPalette | null
  ): void => {
    addRunNotebookCommand(app, {
      model,
      notebooks,
      docManager,
      browsers,
      defaultBrowser
    });
    palette?.addItem({
      command: CommandIDs.runNotebook,
      category: 'Background Tasks'
    });
  }
};

/** Rank in the top area: after Notebook 7's logo (0) and its top-bar toolbar (900, which
 * holds the kernel logo), so the count sits at the bar's right end. */
const TOP_RANK = 1000;

const indicatorPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-bgtasks:indicator',
  description:
    'The count of running background tasks: in the status bar, or in the top area of ' +
    'shells without one (Notebook 7).',
  autoStart: true,
  requires: [IBgTasksModel],
  optional: [IStatusBar],
  activate: (
    app: JupyterFrontEnd,
    model: IBgTasksModel,
    statusBar: IStatusBar | null
  ): void => {
    const indicator = new RunningIndicator(model, () => openPanel(app));
    if (statusBar) {
      statusBar.registerStatusItem('jupyter-bgtasks:indicator', {
        item: indicator,
        align: 'left',
        rank: 50
      });
      return;
    }
    // No status bar (Notebook 7): the top area, styled for it (`jp-mod-top`).
    indicator.id = 'jp-bgtasks-top-indicator';
    indicator.addClass('jp-mod-top');
    try {
      app.shell.add(indicator, 'top', { rank: TOP_RANK });
    } catch (error) {
      console.warn(
        'jupyter-bgtasks: no status bar nor top area for the indicator',
        error
      );
      indicator.dispose();
    }
  }
};

const cellViewPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-bgtasks:cell-view',
  description:
    "A task's output under a notebook cell as a live view of the server's record: " +
    'Cancel works while the kernel is busy, and it is live again after a page reload.',
  autoStart: true,
  requires: [IRenderMimeRegistry, IBgTasksModel],
  activate: (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    model: IBgTasksModel
  ): void => {
    // On the app's registry, before any notebook clones it (plugins activate before
    // documents open); ipywidgets adds its -10 to each notebook's clone.
    rendermime.addFactory(taskRendererFactory(model), TASK_RANK);
  }
};

export default [
  modelPlugin,
  notificationsPlugin,
  panelPlugin,
  indicatorPlugin,
  cellViewPlugin,
  notebookJobsPlugin
];
