/** The extension's icon: a stack of three bars, two of them filled (tasks in progress). */
import { LabIcon } from '@jupyterlab/ui-components';

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M3 4h18v4H3zM3 10h18v4H3zM3 16h18v4H3z" fill-opacity="0.35"/>
    <path d="M3 4h14v4H3zM3 10h8v4H3z"/>
  </g>
</svg>`;

export const tasksIcon = new LabIcon({
  name: 'jupyter-bgtasks:tasks',
  svgstr: svg
});
