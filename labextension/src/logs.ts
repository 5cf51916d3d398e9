/**
 * Live logs over the events websocket (docs/rest.md, "Live logs"): the page asks the
 * server to `follow_log` a task and gets `log` messages as the task prints, instead of
 * polling `GET log` every second. Pure (no DOM, no socket of its own): the model hands it
 * the frames and a `send`, so a test drives it alone.
 *
 * Each follower keeps its own offset; the server follows from the smallest one, and a
 * reconnect (`resume`) follows again from there, so nothing is lost or shown twice.
 */
import { DisposableDelegate, IDisposable } from '@lumino/disposable';

import type { IErrorMessage, ILogMessage } from './types';

/** New text of a followed log, from `offset` (above the follower's own if the head was trimmed). */
export interface ILogUpdate {
  text: string;
  offset: number;
  next_offset: number;
  /** The task has ended and all its log was sent: nothing more comes. */
  end: boolean;
}

/** The server could not follow the log (an unknown task): nothing more comes. */
export interface ILogFailure {
  error: string;
  end: true;
}

export type LogListener = (update: ILogUpdate | ILogFailure) => void;

interface IFollower {
  offset: number;
  listener: LogListener;
}

export class LogFollows {
  /** `send` puts a message on the socket; false while it is not open. */
  constructor(send: (message: unknown) => boolean) {
    this._send = send;
  }

  /** Follow the log of `id` from `offset`, until its end or `dispose()`. */
  follow(id: string, offset: number, listener: LogListener): IDisposable {
    const follower: IFollower = { offset, listener };
    let list = this._followers.get(id);
    if (!list) {
      list = [];
      this._followers.set(id, list);
    }
    list.push(follower);
    this.sendFollow(id);
    return new DisposableDelegate(() => {
      const followers = this._followers.get(id);
      if (!followers) {
        return;
      }
      const i = followers.indexOf(follower);
      if (i >= 0) {
        followers.splice(i, 1);
      }
      if (followers.length === 0) {
        this._followers.delete(id);
        this._send({ type: 'unfollow_log', id });
      }
    });
  }

  /** The socket is live again: follow every log from where its followers are. */
  resume(): void {
    for (const id of this._followers.keys()) {
      this.sendFollow(id);
    }
  }

  /** The messages of one frame: `log` and task `error` messages are handled here. */
  handle(messages: ReadonlyArray<{ type: string }>): void {
    for (const m of messages) {
      if (m.type === 'log') {
        this.onLog(m as ILogMessage);
      } else if (m.type === 'error' && (m as IErrorMessage).id) {
        const message = m as IErrorMessage;
        const followers = this._followers.get(message.id!) ?? [];
        this._followers.delete(message.id!);
        for (const f of followers) {
          f.listener({ error: message.message, end: true });
        }
      }
    }
  }

  /** Logs followed now (for tests and diagnostics). */
  get followed(): string[] {
    return [...this._followers.keys()];
  }

  private onLog(message: ILogMessage): void {
    const followers = this._followers.get(message.id);
    if (!followers) {
      return;
    }
    if (message.end) {
      this._followers.delete(message.id);
    }
    for (const f of [...followers]) {
      // Each from its own offset: a follow restarted for another follower (or after a
      // reconnect) repeats text this one already has.
      const begin = Math.max(f.offset, message.offset);
      const text =
        begin < message.next_offset
          ? message.text.slice(begin - message.offset)
          : '';
      if (!text && !message.end) {
        continue;
      }
      f.offset = Math.max(f.offset, message.next_offset);
      f.listener({
        text,
        offset: Math.min(begin, message.next_offset),
        next_offset: message.next_offset,
        end: message.end
      });
    }
  }

  private sendFollow(id: string): void {
    const followers = this._followers.get(id);
    if (followers && followers.length) {
      const offset = Math.min(...followers.map(f => f.offset));
      this._send({ type: 'follow_log', id, offset });
    }
  }

  private _send: (message: unknown) => boolean;
  private _followers = new Map<string, IFollower[]>();
}
