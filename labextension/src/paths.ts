/**
 * Notebook paths as the server's contents API knows them. A kernel reports its
 * notebook from `JPY_SESSION_NAME`, which jupyter_server sets to an absolute file
 * path; documents open by their path relative to the server root.
 */

/** `path` relative to `serverRoot` when it lies under it; otherwise as given. */
export function contentsPath(path: string, serverRoot: string): string {
  const root = serverRoot.replace(/\\/g, '/').replace(/\/+$/, '');
  const full = path.replace(/\\/g, '/');
  if (root && full.startsWith(`${root}/`)) {
    return full.slice(root.length + 1);
  }
  return full.replace(/^\.\//, '');
}
