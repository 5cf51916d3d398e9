/**
 * Whether a row offers Retry, and why not. A pure rule, so node tests run it without a DOM.
 *
 * The server's `POST tasks/{id}/retry` runs a task again from what it stored (spec and
 * input). A `kernel`-executor task (`%%bgtask --executor kernel`) ran inside its kernel:
 * its code lives there, not on the server, so the server always answers 409. The row says
 * so before the click, on a disabled button, instead of an error toast after it.
 */
import type { ITask } from './types';

/** The executor whose tasks run inside their kernel (bgtasks_ext/executors/kernel.py). */
export const IN_KERNEL_EXECUTOR = 'kernel';

/** The disabled Retry button's tooltip: why, and what to do instead. */
export const RAN_IN_KERNEL = 'Ran inside its kernel: run the cell again';

/** Why `task` cannot be retried from the panel, or `null` when Retry is offered. */
export function retryRefusal(task: ITask): string | null {
  return task.executor === IN_KERNEL_EXECUTOR ? RAN_IN_KERNEL : null;
}
