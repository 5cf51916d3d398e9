/**
 * "Run in background" (`bgtasks:run-notebook`): a notebook file as a `notebook` task.
 *
 * Where it shows is declared in schema/notebook-jobs.json, the JupyterLab 4 way: the file
 * browser's context menu on notebook items (`jupyter.lab.menus`, with `from: filebrowser`
 * so the command runs the browser's selection) and the notebook panel's toolbar
 * (`jupyter.lab.toolbars`, which calls commands with `toolbar: true`; it runs the
 * current notebook). The server runs the file as saved, so an open notebook with unsaved
 * changes is saved first; a refusal (a 400: not a notebook, outside the root…) is shown
 * with the server's own message.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification, showErrorMessage } from '@jupyterlab/apputils';
import type { IDocumentManager } from '@jupyterlab/docmanager';
import type { FileBrowser, IFileBrowserFactory } from '@jupyterlab/filebrowser';
import type { INotebookTracker } from '@jupyterlab/notebook';
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { errorText } from './errors';
import { tasksIcon } from './icons';
import { fileName, isNotebookPath, notebookTaskBody } from './notebookjob';
import { CommandIDs, IBgTasksModel } from './tokens';
import type { ITask } from './types';

export namespace RunNotebook {
  export interface IOptions {
    model: IBgTasksModel;
    /** Open notebooks: the current one is the toolbar's target. */
    notebooks: INotebookTracker | null;
    /** Open documents: a dirty one is saved before it runs. */
    docManager: IDocumentManager | null;
    /** File browsers: the context menu runs the current one's selection. */
    browsers: IFileBrowserFactory | null;
    defaultBrowser: FileBrowser | null;
  }
}

/** What of an open document's context saving it first needs. */
interface ISavable {
  readonly model: { readonly dirty: boolean; readonly readOnly: boolean };
  save(): Promise<void>;
}

/** A notebook to run: its contents path, and its open document when there is one. */
interface ITarget {
  path: string;
  context?: ISavable;
}

/** Add the command; its menu and toolbar places come from schema/notebook-jobs.json. */
export function addRunNotebookCommand(
  app: JupyterFrontEnd,
  options: RunNotebook.IOptions
): void {
  const { model, notebooks, docManager, browsers, defaultBrowser } = options;
  const contents = app.serviceManager.contents;

  const targets = (args: ReadonlyPartialJSONObject): ITarget[] => {
    if (typeof args.path === 'string') {
      return isNotebookPath(args.path) ? [{ path: args.path }] : [];
    }
    if (args.from === 'filebrowser') {
      const browser = browsers?.tracker.currentWidget ?? defaultBrowser;
      if (!browser) {
        return [];
      }
      return Array.from(browser.selectedItems())
        .filter(item => item.type === 'notebook' || isNotebookPath(item.path))
        .map(item => ({ path: item.path }));
    }
    const panel = notebooks?.currentWidget;
    return panel ? [{ path: panel.context.path, context: panel.context }] : [];
  };

  /** The open document of `target`, saved when it has unsaved changes. */
  const saveFirst = async (target: ITarget): Promise<void> => {
    let context: ISavable | undefined = target.context;
    if (!context && docManager) {
      const widget = docManager.findWidget(target.path, null);
      context = widget ? docManager.contextForWidget(widget) : undefined;
    }
    if (context?.model.dirty && !context.model.readOnly) {
      await context.save();
    }
  };

  const run = async (target: ITarget): Promise<ITask | null> => {
    const path = contents.localPath(target.path);
    const name = fileName(path);
    try {
      await saveFirst(target);
    } catch (error) {
      Notification.error(
        `${name} was not run: saving it first failed: ${errorText(error)}`,
        { autoClose: false }
      );
      return null;
    }
    try {
      const task = await model.create(notebookTaskBody(path));
      Notification.info(`${name} runs in the background`, {
        autoClose: 5000,
        actions: [
          {
            label: 'Show',
            caption: 'Show it in the Background Tasks panel',
            // The tab it is in by now: a warm job may have finished already.
            callback: () =>
              void app.commands.execute(CommandIDs.openPanel, {
                tab: (model.task(task.id) ?? task).category
              })
          }
        ]
      });
      return task;
    } catch (error) {
      // The server's 400 says what is wrong (`params.path`: not a notebook…); a toast
      // shows 140 characters, "Details" all of it.
      const message = errorText(error);
      const title = `Could not run ${name} in the background`;
      Notification.error(`${title}: ${message}`, {
        autoClose: false,
        actions: [
          {
            label: 'Details',
            caption: "The server's whole message",
            callback: () => void showErrorMessage(title, message)
          }
        ]
      });
      return null;
    }
  };

  app.commands.addCommand(CommandIDs.runNotebook, {
    label: args => (args.toolbar ? '' : 'Run in background'),
    caption:
      'Run this notebook as a background task: the saved file, in a fresh kernel; ' +
      'an executed copy is written beside it',
    icon: tasksIcon,
    isEnabled: args => targets(args).length > 0,
    describedBy: {
      args: {
        type: 'object',
        properties: {
          path: {
            type: 'string',
            description: 'The notebook, relative to the server root'
          },
          from: {
            type: 'string',
            enum: ['filebrowser'],
            description: "The file browser's selected notebooks"
          },
          toolbar: {
            type: 'boolean',
            description: 'From a toolbar: an icon without a label'
          }
        }
      }
    },
    execute: async args => {
      const tasks = await Promise.all(targets(args).map(run));
      return tasks.filter(task => task !== null).map(task => task.id);
    }
  });
}
