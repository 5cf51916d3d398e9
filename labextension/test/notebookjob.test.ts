/** Notebook jobs in the browser: the request "Run in background" sends, and the copy a row opens. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  executedCopy,
  fileName,
  isNotebookPath,
  notebookTaskBody
} from '../src/notebookjob';
import type { ITaskError } from '../src/types';
import { makeTask } from './fixtures';

describe('notebookTaskBody', () => {
  test('runs the file by its root-relative path, linked as the origin, unnamed', () => {
    // Given a notebook in a folder, as the file browser names it
    // When "Run in background" makes its request
    const body = notebookTaskBody('reports/q3.ipynb');

    // Then it is a `notebook` task of that path; the server names it after the file
    assert.deepEqual(body, {
      kind: 'notebook',
      params: { path: 'reports/q3.ipynb' },
      origin: { path: 'reports/q3.ipynb' }
    });
    assert.equal('name' in body, false);
  });

  test('a leading slash is dropped: the server wants a root-relative path', () => {
    assert.equal(notebookTaskBody('/a/b.ipynb').params?.path, 'a/b.ipynb');
  });
});

describe('isNotebookPath and fileName', () => {
  test('only .ipynb files are notebooks', () => {
    assert.equal(isNotebookPath('a/report.ipynb'), true);
    assert.equal(isNotebookPath('a/report.py'), false);
    assert.equal(isNotebookPath('a/report.ipynb.bak'), false);
  });

  test('the file name is the last part', () => {
    assert.equal(fileName('a/b/report.ipynb'), 'report.ipynb');
    assert.equal(fileName('report.ipynb'), 'report.ipynb');
  });
});

describe('executedCopy', () => {
  test('a finished notebook task: the copy its result names', () => {
    const task = makeTask({
      kind: 'notebook',
      state: 'finished',
      result_preview: {
        executed_copy: 'r/q3.2026-11-30T09-15-02.ipynb',
        cells: 3,
        kernel_name: 'python3'
      }
    });
    assert.equal(executedCopy(task), 'r/q3.2026-11-30T09-15-02.ipynb');
  });

  test('a failed notebook task: the copy its error data names', () => {
    const task = makeTask({
      kind: 'notebook',
      state: 'failed',
      error: {
        type: 'ZeroDivisionError',
        message: 'cell 2 (1/0): ZeroDivisionError: division by zero',
        traceback: '',
        reason: null,
        data: { executed_copy: 'q3.2026-11-30T09-15-02.ipynb', cell: 2 }
      } as ITaskError
    });
    assert.equal(executedCopy(task), 'q3.2026-11-30T09-15-02.ipynb');
  });

  test('none while it runs, without a copy, or for another kind', () => {
    // A running notebook task has no result yet
    assert.equal(
      executedCopy(makeTask({ kind: 'notebook', state: 'running' })),
      null
    );
    // An error without data (the engine decided it, e.g. a lost worker)
    const lost = makeTask({
      kind: 'notebook',
      state: 'failed',
      error: { type: 'WorkerLost', message: '', traceback: '', reason: 'lost' }
    });
    assert.equal(executedCopy(lost), null);
    // Another kind whose result happens to have the key
    const other = makeTask({
      kind: 'code',
      state: 'finished',
      result_preview: { executed_copy: 'x.ipynb' }
    });
    assert.equal(executedCopy(other), null);
    // A result that is not a dict
    const scalar = makeTask({
      kind: 'notebook',
      state: 'finished',
      result_preview: 42
    });
    assert.equal(executedCopy(scalar), null);
  });
});
