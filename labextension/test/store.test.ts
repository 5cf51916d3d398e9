/** Merging the events websocket's messages (snapshot, task messages, arrays) and REST pages. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { contentsPath } from '../src/paths';
import { parseFrame, TaskStore } from '../src/store';
import { makeTask, withState } from './fixtures';

describe('parseFrame', () => {
  test('reads one message or a JSON array of messages, in order', () => {
    const one = parseFrame('{"type": "snapshot", "seq": 1, "tasks": []}');
    const many = parseFrame(
      '[{"type": "task", "seq": 2}, {"type": "task", "seq": 3}]'
    );
    assert.deepEqual(
      one.map(m => m.seq),
      [1]
    );
    assert.deepEqual(
      many.map(m => m.seq),
      [2, 3]
    );
  });
});

describe('TaskStore', () => {
  test('a snapshot fills the pending tab, newest first', () => {
    // Given a store and a snapshot of two live tasks
    const store = new TaskStore();
    const older = makeTask();
    const newer = makeTask({ state: 'pending' });

    // When it is applied
    const result = store.applyFrame(
      JSON.stringify({ type: 'snapshot', seq: 10, tasks: [older, newer] })
    );

    // Then both are in the pending tab, the newest first
    assert.equal(result.changed, true);
    assert.deepEqual(
      store.byCategory('pending').map(t => t.id),
      [newer.id, older.id]
    );
  });

  test('task messages after the snapshot apply in order; older ones are dropped', () => {
    // Given a snapshot at seq 10 with one running task
    const store = new TaskStore();
    const task = makeTask();
    store.applyMessages([{ type: 'snapshot', seq: 10, tasks: [task] }]);

    // When a frame carries an array: a stale message (seq 9), progress, then the end
    const frame = [
      {
        type: 'task',
        seq: 9,
        change: 'state',
        task: withState(task, 'failed')
      },
      {
        type: 'task',
        seq: 11,
        change: 'progress',
        task: withState(task, 'running', 2)
      },
      {
        type: 'task',
        seq: 12,
        change: 'state',
        task: withState(task, 'finished', 3)
      }
    ];
    const result = store.applyFrame(JSON.stringify(frame));

    // Then the task moved to Finished, and its end is reported once
    assert.deepEqual(store.byCategory('pending'), []);
    assert.equal(store.get(task.id)?.state, 'finished');
    assert.equal(store.get(task.id)?.progress.current, 3);
    assert.deepEqual(
      result.ended.map(t => t.id),
      [task.id]
    );

    // And a late progress message of the same task (lower seq) changes nothing
    store.applyMessages([
      {
        type: 'task',
        seq: 11,
        change: 'progress',
        task: withState(task, 'running', 2)
      }
    ]);
    assert.equal(store.get(task.id)?.state, 'finished');
  });

  test('created adds a task and deleted removes it', () => {
    const store = new TaskStore();
    store.applyMessages([{ type: 'snapshot', seq: 1, tasks: [] }]);
    const task = makeTask({ state: 'pending' });

    store.applyMessages([{ type: 'task', seq: 2, change: 'created', task }]);
    assert.equal(store.byCategory('pending').length, 1);

    const result = store.applyMessages([
      {
        type: 'task',
        seq: 3,
        change: 'deleted',
        task: withState(task, 'cancelled')
      }
    ]);
    assert.equal(result.changed, true);
    assert.equal(store.size, 0);
  });

  test('a new snapshot reports live tasks it no longer lists as stale', () => {
    // Given a running task known from an earlier connection
    const store = new TaskStore();
    const gone = makeTask();
    const still = makeTask();
    store.applyMessages([{ type: 'snapshot', seq: 5, tasks: [gone, still] }]);

    // When the reconnect's snapshot lists only one of them
    const result = store.applyMessages([
      { type: 'snapshot', seq: 50, tasks: [still] }
    ]);

    // Then the other one is stale: the model asks the server how it ended
    assert.deepEqual(result.stale, [gone.id]);
  });

  test('a REST page never turns a terminal task back into a live one', () => {
    const store = new TaskStore();
    const task = makeTask();
    store.applyMessages([{ type: 'snapshot', seq: 1, tasks: [task] }]);
    store.applyMessages([
      { type: 'task', seq: 2, change: 'state', task: withState(task, 'failed') }
    ]);

    store.upsert([task]); // a listing read before it failed

    assert.equal(store.get(task.id)?.state, 'failed');
    assert.deepEqual(
      store.byCategory('failed').map(t => t.id),
      [task.id]
    );
  });

  test('unknown message types are ignored', () => {
    const store = new TaskStore();
    const result = store.applyFrame('{"type": "schedule", "seq": 3}');
    assert.equal(result.changed, false);
  });
});

describe('contentsPath', () => {
  test('an absolute path under the server root opens relative to it', () => {
    assert.equal(
      contentsPath('/home/a/work/sub/n.ipynb', '/home/a/work'),
      'sub/n.ipynb'
    );
    assert.equal(
      contentsPath('/home/a/work/n.ipynb', '/home/a/work/'),
      'n.ipynb'
    );
    assert.equal(contentsPath('sub/n.ipynb', '/home/a/work'), 'sub/n.ipynb');
    assert.equal(
      contentsPath('/elsewhere/n.ipynb', '/home/a/work'),
      '/elsewhere/n.ipynb'
    );
  });
});
