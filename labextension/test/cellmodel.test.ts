/**
 * What the cell view asks of the model: `fetch` a task the page has not seen (then kept
 * current by events) and `watch` one task without hearing about the others.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { TasksModel } from '../src/model';
import { ApiError } from '../src/request';
import { ITask } from '../src/types';
import { FakeApi, FakeClock, makeTask, settle, withState } from './fixtures';

function started(): { api: FakeApi; model: TasksModel } {
  const api = new FakeApi();
  const model = new TasksModel({
    api,
    clock: new FakeClock(),
    random: () => 1,
    pollInterval: 5,
    backoff: { base: 100, max: 1000 }
  });
  model.start();
  api.socket.open();
  api.socket.send({ type: 'snapshot', seq: 1, tasks: [] });
  return { api, model };
}

describe('TasksModel.fetch', () => {
  test('reads a task the page has not seen, and events keep it current', async () => {
    // Given a finished task the server has, not in the page's lists
    const { api, model } = started();
    const old = makeTask({ state: 'finished' });
    api.byId.set(old.id, old);

    // When a view fetches it
    const task = await model.fetch(old.id);

    // Then it is in the store, and a later event (a note set) updates it there
    assert.equal(task?.id, old.id);
    assert.equal(model.task(old.id), task);
    api.socket.send({
      type: 'task',
      seq: 2,
      change: 'note',
      task: { ...old, note: 'outputs set: a' }
    });
    assert.equal(model.task(old.id)?.note, 'outputs set: a');
  });

  test('null for an id the server does not know; views asking at once share a request', async () => {
    const { api, model } = started();
    let gets = 0;
    const get = api.get.bind(api);
    api.get = (id: string) => {
      gets++;
      return get(id);
    };
    const [a, b] = await Promise.all([
      model.fetch('nope'),
      model.fetch('nope')
    ]);
    assert.equal(a, null);
    assert.equal(b, null);
    assert.equal(gets, 1);
  });

  test('a task created over events while the GET was refused is returned', async () => {
    // Given a task being sent by a kernel: the server answers 404 at first
    const { api, model } = started();
    const task = makeTask({ state: 'pending' });
    const pending = model.fetch(task.id);

    // When its creation arrives over the websocket before the 404 is read
    api.socket.send({ type: 'task', seq: 2, change: 'created', task });

    // Then fetch gives the record, not null
    assert.equal((await pending)?.id, task.id);
  });

  test('a reserved id (its inputs on their way) rejects with reserved, not null', async () => {
    const { api, model } = started();
    api.get = () =>
      Promise.reject(
        new ApiError(404, 'does not exist yet: its id is reserved', null, true)
      );
    await assert.rejects(
      model.fetch('r'),
      (error: ApiError) => error.reserved && error.status === 404
    );
  });

  test('other refusals reject (the view says the server could not be asked)', async () => {
    const { api, model } = started();
    api.get = () =>
      Promise.reject(Object.assign(new Error('down'), { status: 0 }));
    await assert.rejects(model.fetch('x'), /down/);
  });
});

describe('TasksModel.watch', () => {
  test('hears only its task: each new record, then undefined when deleted', async () => {
    // Given two running tasks and a watcher of the first
    const { api, model } = started();
    const mine = makeTask();
    const other = makeTask();
    api.socket.send([
      { type: 'task', seq: 2, change: 'created', task: mine },
      { type: 'task', seq: 3, change: 'created', task: other }
    ]);
    const heard: (ITask | undefined)[] = [];
    const watch = model.watch(mine.id, t => heard.push(t));

    // When the other task makes progress many times, then the first moves and is deleted
    for (let i = 0; i < 50; i++) {
      api.socket.send({
        type: 'task',
        seq: 4 + i,
        change: 'progress',
        task: withState(other, 'running', i)
      });
    }
    const moved = withState(mine, 'finished', 3);
    api.socket.send({ type: 'task', seq: 100, change: 'state', task: moved });
    api.socket.send({ type: 'task', seq: 101, change: 'deleted', task: moved });
    await settle();

    // Then the watcher heard exactly its task's two changes
    assert.deepEqual(
      heard.map(t => t?.state),
      ['finished', undefined]
    );

    // And after dispose it hears nothing more
    watch.dispose();
    api.socket.send({ type: 'task', seq: 102, change: 'created', task: mine });
    assert.equal(heard.length, 2);
  });

  test('a cancel through the model is heard by the watcher at once', async () => {
    const { api, model } = started();
    const task = makeTask();
    api.byId.set(task.id, task);
    api.socket.send({ type: 'task', seq: 2, change: 'created', task });
    const heard: string[] = [];
    model.watch(task.id, t => heard.push(String(t?.state)));
    await model.cancel(task.id);
    assert.deepEqual(heard, ['cancelling']);
  });
});
