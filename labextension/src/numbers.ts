/** Numbers as people write them, for progress labels (mirrors `human_number` of the kernel widget). */
import type { IProgress } from './types';

/**
 * `60`, `1,234,567` (whole numbers, big ones with thousands separators), `10.3`,
 * `0.00123` (3 significant digits), and `1,235` for a big fraction (its unit is enough).
 */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) {
    return String(value);
  }
  if (Number.isInteger(value) || Math.abs(value) >= 100) {
    return Math.round(value).toLocaleString('en-US');
  }
  return String(Number(value.toPrecision(3)));
}

/** What a row's bar says: the task's message, else `10.3 of 60`, else nothing. */
export function progressLabel(progress: IProgress): string {
  if (progress.message) {
    return progress.message;
  }
  if (progress.total === null) {
    return '';
  }
  return `${formatNumber(progress.current)} of ${formatNumber(progress.total)}`;
}
