/**
 * Live logs over the events websocket (logs.ts): what is sent to the server, and what
 * each follower is handed, through reconnects and restarted follows.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ILogFailure, ILogUpdate, LogFollows } from '../src/logs';
import { TasksModel } from '../src/model';
import { FakeApi, FakeClock } from './fixtures';

type Update = ILogUpdate | ILogFailure;

function setUp(open = true): {
  follows: LogFollows;
  sent: any[];
  socket: { open: boolean };
} {
  const sent: any[] = [];
  const socket = { open };
  const follows = new LogFollows(message => {
    if (socket.open) {
      sent.push(message);
    }
    return socket.open;
  });
  return { follows, sent, socket };
}

function log(id: string, offset: number, text: string, end = false): any {
  return {
    type: 'log',
    id,
    offset,
    next_offset: offset + text.length,
    text,
    end
  };
}

describe('LogFollows', () => {
  test('a follow asks the server, and its updates grow until the end', () => {
    // Given a follow of one task's log from the start
    const { follows, sent } = setUp();
    const got: Update[] = [];
    follows.follow('t1', 0, u => got.push(u));
    assert.deepEqual(sent, [{ type: 'follow_log', id: 't1', offset: 0 }]);

    // When the server pushes two pieces, the last one the end
    follows.handle([log('t1', 0, 'one\n')]);
    follows.handle([log('t1', 4, 'two\n', true)]);

    // Then the follower got both, in order, and the follow is over
    assert.deepEqual(got, [
      { text: 'one\n', offset: 0, next_offset: 4, end: false },
      { text: 'two\n', offset: 4, next_offset: 8, end: true }
    ]);
    assert.deepEqual(follows.followed, []);
  });

  test('a second follower from 0 restarts the server follow; the first sees nothing twice', () => {
    const { follows, sent } = setUp();
    const first: Update[] = [];
    const second: Update[] = [];
    follows.follow('t1', 0, u => first.push(u));
    follows.handle([log('t1', 0, 'abc')]);
    // When another view follows the same log from the start
    follows.follow('t1', 0, u => second.push(u));
    // Then the server is asked from 0 again, and its repeat reaches only the newcomer
    assert.deepEqual(sent[1], { type: 'follow_log', id: 't1', offset: 0 });
    follows.handle([log('t1', 0, 'abcdef')]);
    assert.deepEqual(
      first.map(u => (u as ILogUpdate).text),
      ['abc', 'def']
    );
    assert.deepEqual(
      second.map(u => (u as ILogUpdate).text),
      ['abcdef']
    );
  });

  test('while the socket is down nothing is sent; back live, every follow resumes from its offset', () => {
    const { follows, sent, socket } = setUp(false);
    const got: Update[] = [];
    follows.follow('t1', 0, u => got.push(u));
    assert.deepEqual(sent, []);
    socket.open = true;
    follows.resume();
    follows.handle([log('t1', 0, 'hello ')]);
    // (the socket drops and comes back)
    follows.resume();
    assert.deepEqual(sent, [
      { type: 'follow_log', id: 't1', offset: 0 },
      { type: 'follow_log', id: 't1', offset: 6 }
    ]);
  });

  test('disposing the last follower unfollows; a trimmed head shows in the offset', () => {
    const { follows, sent } = setUp();
    const got: Update[] = [];
    const follow = follows.follow('t1', 0, u => got.push(u));
    follows.handle([log('t1', 500, 'newest')]);
    assert.equal((got[0] as ILogUpdate).offset, 500);
    follow.dispose();
    follow.dispose();
    assert.deepEqual(sent.slice(1), [{ type: 'unfollow_log', id: 't1' }]);
    follows.handle([log('t1', 506, 'more')]);
    assert.equal(got.length, 1);
  });

  test('an error about the task ends its follow with the message', () => {
    const { follows } = setUp();
    const got: Update[] = [];
    follows.follow('nope', 0, u => got.push(u));
    const error = {
      type: 'error',
      field: 'id',
      message: 'no task nope',
      id: 'nope'
    };
    follows.handle([error]);
    assert.deepEqual(got, [{ error: 'no task nope', end: true }]);
    assert.deepEqual(follows.followed, []);
  });
});

describe('TasksModel.followLog', () => {
  test('log messages of the events socket reach the follower', () => {
    // Given a started model whose socket is live
    const api = new FakeApi();
    const model = new TasksModel({ api, clock: new FakeClock() });
    model.start();
    api.socket.open();
    api.socket.send({ type: 'snapshot', seq: 1, tasks: [] });
    const got: Update[] = [];
    model.followLog('t1', 0, u => got.push(u));

    // When a frame holds a log message beside a task message
    api.socket.send([log('t1', 0, 'printed\n')]);

    // Then the follower has the text, and the task list is untouched
    assert.deepEqual(got, [
      { text: 'printed\n', offset: 0, next_offset: 8, end: false }
    ]);
    assert.equal(model.tasks('pending').length, 0);
    model.dispose();
  });
});
