/**
 * The model: the task list from events, REST polling while the socket is down, history
 * pages, and the tasks launched here. The socket and its backoff: connection.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { TasksModel } from '../src/model';
import { ITask } from '../src/types';
import {
  failReconnects,
  FakeApi,
  FakeClock,
  makeTask,
  settle,
  withState
} from './fixtures';

function setUp(): { api: FakeApi; clock: FakeClock; model: TasksModel } {
  const api = new FakeApi();
  const clock = new FakeClock();
  const model = new TasksModel({
    api,
    clock,
    random: () => 1,
    pollInterval: 5,
    backoff: { base: 100, max: 1000 }
  });
  return { api, clock, model };
}

describe('TasksModel', () => {
  test('the snapshot and then task messages drive the tabs and the running count', async () => {
    // Given a started model whose socket opened
    const { api, model } = setUp();
    const finished = makeTask({ state: 'finished' });
    api.pages.finished = [finished];
    let changes = 0;
    model.changed.connect(() => changes++);
    model.start();
    api.socket.open();

    // When the snapshot lists a running task, then one frame holds progress and its end
    const task = makeTask();
    api.socket.send({ type: 'snapshot', seq: 1, tasks: [task] });
    assert.equal(model.status, 'live');
    assert.equal(model.runningCount, 1);
    api.socket.send([
      {
        type: 'task',
        seq: 2,
        change: 'progress',
        task: withState(task, 'running', 2)
      },
      {
        type: 'task',
        seq: 3,
        change: 'state',
        task: withState(task, 'finished', 3)
      }
    ]);
    await settle();

    // Then it left Pending for Finished, beside the task read over REST
    assert.deepEqual(model.tasks('pending'), []);
    assert.deepEqual(
      model.tasks('finished').map(t => t.id),
      [task.id, finished.id]
    );
    assert.equal(model.runningCount, 0);
    assert.ok(changes > 0);
  });

  test('only tasks launched here are announced when they end', async () => {
    const { api, model } = setUp();
    const ended: ITask[] = [];
    model.taskEnded.connect((_, t) => ended.push(t));
    model.start();
    api.socket.open();
    api.socket.send({ type: 'snapshot', seq: 1, tasks: [] });

    // Given one task created through the model and one created elsewhere
    const mine = await model.create({ kind: 'count' });
    const theirs = makeTask({ state: 'pending' });

    // When both end
    api.socket.send([
      { type: 'task', seq: 2, change: 'created', task: theirs },
      {
        type: 'task',
        seq: 3,
        change: 'state',
        task: withState(mine, 'failed')
      },
      {
        type: 'task',
        seq: 4,
        change: 'state',
        task: withState(theirs, 'finished')
      }
    ]);

    // Then only the one launched here is announced
    assert.deepEqual(
      ended.map(t => [t.id, t.state]),
      [[mine.id, 'failed']]
    );
    assert.equal(model.isMine(mine.id), true);
  });

  test('retry asks the server to run the task again, rebuilding no spec', async () => {
    // Given an ended cell task (its payload lives on the server only)
    const { api, model } = setUp();
    const task = makeTask({ kind: 'code', name: 'cell', state: 'failed' });
    api.byId.set(task.id, task);

    // When it is retried
    const again = await model.retry(task);

    // Then the server's retry route made the new task; nothing was created from here
    assert.deepEqual(api.retried, [task.id]);
    assert.deepEqual(api.created, []);
    assert.notEqual(again.id, task.id);
    assert.equal(model.isMine(again.id), true);
  });

  test('a dropped socket is retried with growing delays while REST polling keeps up', async () => {
    // Given a live model
    const { api, clock, model } = setUp();
    model.start();
    api.socket.open();
    const task = makeTask();
    api.socket.send({ type: 'snapshot', seq: 1, tasks: [task] });
    await settle();

    // When the socket drops, and every reconnect fails at once
    api.pages.pending = [withState(task, 'running', 1)];
    const delays = failReconnects(api, clock, 6);
    assert.equal(model.status, 'polling');

    // Then the delays grow exponentially up to the cap
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
    assert.equal(api.sockets.length, 7);

    // And meanwhile REST polling read the live list
    await new Promise(resolve => setTimeout(resolve, 50));
    assert.ok(
      api.lists.some(q => q.category === 'pending'),
      JSON.stringify(api.lists)
    );
    assert.equal(model.task(task.id)?.progress.current, 1);

    // When a reconnect succeeds: the new snapshot no longer lists the task
    api.byId.set(task.id, withState(task, 'finished', 3));
    clock.fire();
    api.socket.open();
    api.socket.send({ type: 'snapshot', seq: 40, tasks: [] });
    await settle();

    // Then the model is live again and the vanished task's end was read from the server
    // (that the backoff is reset: connection.test.ts)
    assert.equal(model.status, 'live');
    assert.equal(model.task(task.id)?.state, 'finished');
    model.dispose();
  });

  test('a task the server no longer has is dropped after a reconnect', async () => {
    const { api, clock, model } = setUp();
    model.start();
    api.socket.open();
    const task = makeTask();
    api.socket.send({ type: 'snapshot', seq: 1, tasks: [task] });

    api.socket.drop();
    clock.fire();
    api.socket.open();
    api.socket.send({ type: 'snapshot', seq: 9, tasks: [] });
    await settle();

    assert.equal(model.task(task.id), undefined);
    model.dispose();
  });

  test('history tabs load page by page', async () => {
    const { api, model } = setUp();
    api.pages.failed = Array.from({ length: 250 }, () =>
      makeTask({ state: 'failed' })
    );
    model.start();
    await settle();
    assert.equal(model.tasks('failed').length, 100);
    assert.equal(model.tab('failed').hasMore, true);

    await model.loadMore('failed');
    await model.loadMore('failed');

    assert.equal(model.tasks('failed').length, 250);
    assert.equal(model.tab('failed').hasMore, false);
    model.dispose();
  });

  test('a failed poll shows on the pending tab until the socket is back', async () => {
    // Given a live model whose socket drops while the server is unreachable over REST
    const { api, clock, model } = setUp();
    const statuses: string[] = [];
    model.statusChanged.connect((_, status) => statuses.push(status));
    model.start();
    api.socket.open();
    api.socket.send({ type: 'snapshot', seq: 1, tasks: [] });
    api.failLists = true;
    api.socket.drop();

    // When a poll fails
    await new Promise(resolve => setTimeout(resolve, 50));

    // Then the pending tab says so
    assert.equal(model.status, 'polling');
    assert.equal(model.tab('pending').error, 'unreachable');

    // When the socket comes back
    api.failLists = false;
    clock.fire();
    api.socket.open();
    api.socket.send({ type: 'snapshot', seq: 2, tasks: [] });

    // Then the error is gone and every status change was passed on
    assert.equal(model.tab('pending').error, null);
    assert.deepEqual(statuses, ['live', 'polling', 'live']);
    model.dispose();
    assert.deepEqual(statuses, ['live', 'polling', 'live', 'disposed']);
  });

  test('an unreachable server shows as an error on the tab, not a crash', async () => {
    const { api, model } = setUp();
    api.failLists = true;
    model.start();
    await settle();
    assert.equal(model.tab('finished').error, 'unreachable');
    model.dispose();
  });
});
