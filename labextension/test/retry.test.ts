/** Which rows offer Retry (retry.ts): every executor but the one that runs in the kernel. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { RAN_IN_KERNEL, retryRefusal } from '../src/retry';
import { makeTask } from './fixtures';

describe('retryRefusal', () => {
  test('a kernel-executor task cannot be retried: the reason says to run the cell again', () => {
    // Given a %%bgtask --executor kernel cell's task that failed
    const task = makeTask({
      kind: 'code',
      executor: 'kernel',
      state: 'failed'
    });
    // Then its Retry is refused, with the reason the tooltip shows
    assert.equal(retryRefusal(task), RAN_IN_KERNEL);
    assert.match(RAN_IN_KERNEL, /run the cell again/);
  });

  test('tasks of every other executor keep their Retry', () => {
    for (const executor of ['process', 'thread', 'dask', 'subprocess']) {
      const task = makeTask({ kind: 'code', executor, state: 'failed' });
      assert.equal(retryRefusal(task), null, executor);
    }
  });
});
