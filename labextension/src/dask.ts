/**
 * Where a task of the `dask` executor runs: its Dask worker (`task.placement`) and that
 * worker's page on the cluster's dashboard, when the scheduler serves one. The dashboard's
 * URL is the server's to know (`GET bgtasks/api/status`): asked once per page, the first
 * time a row shows a placement; rows drawn before the answer link nothing and the next
 * redraw (any change of a live task) links it.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

let dashboard: string | null | undefined;
let asking = false;

/** The Dask dashboard's URL (`http://host:8787/status`), or null: unknown or none. */
export function daskDashboard(
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string | null {
  if (dashboard === undefined && !asking) {
    asking = true;
    void ask(settings);
  }
  return dashboard ?? null;
}

async function ask(settings: ServerConnection.ISettings): Promise<void> {
  try {
    const url = URLExt.join(settings.baseUrl, 'bgtasks/api/status');
    const response = await ServerConnection.makeRequest(url, {}, settings);
    const body = response.ok ? await response.json() : null;
    const link = body?.executors?.dask?.dashboard;
    dashboard = typeof link === 'string' && link ? link : null;
  } catch {
    dashboard = null;
  } finally {
    asking = false;
  }
}

/**
 * The dashboard page of one worker: `http://host:8787/info/worker/<address>.html` for the
 * dashboard `http://host:8787/status` and the worker `tcp://10.0.0.5:40001`.
 */
export function workerPage(dashboardUrl: string, address: string): string {
  const base = dashboardUrl.replace(/\/status\/?$/, '').replace(/\/+$/, '');
  return `${base}/info/worker/${encodeURIComponent(address)}.html`;
}

/** A worker address as a row shows it: `10.0.0.5:40001` (the scheme left out). */
export function shortAddress(address: string): string {
  return address.replace(/^[a-z]+:\/\//, '');
}
