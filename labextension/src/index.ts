/**
 * Entry point of the jupyter-bgtasks JupyterLab extension: it only wires plugins.
 * The "Background Tasks" panel, its model and the REST client arrive in their own
 * modules (issue #5).
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';

/** Plugin id; browser tests look it up with `jupyterapp.hasPlugin`. */
export const PLUGIN_ID = 'jupyter-bgtasks:plugin';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Background tasks for Jupyter: panel, indicator and notifications.',
  autoStart: true,
  activate: (app: JupyterFrontEnd): void => {
    console.debug(`${PLUGIN_ID} activated`);
  }
};

export default plugin;
