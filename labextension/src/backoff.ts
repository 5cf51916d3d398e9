/**
 * Reconnect delays: exponential with "equal jitter", so a server restart is not met by
 * every browser reconnecting in the same millisecond.
 */

/** Bounds of the reconnect delay, in milliseconds. */
export interface IBackoff {
  /** The first retry waits between `base / 2` and `base`. */
  base: number;
  /** No retry waits longer than this. */
  max: number;
}

export const DEFAULT_BACKOFF: IBackoff = { base: 500, max: 30_000 };

/**
 * How long to wait before reconnect attempt `attempt` (1 for the first retry): half of
 * `min(max, base * 2^(attempt-1))` plus a random share of the other half.
 */
export function backoffDelay(
  attempt: number,
  backoff: IBackoff = DEFAULT_BACKOFF,
  random: () => number = Math.random
): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  const ceiling = Math.min(backoff.max, backoff.base * 2 ** exponent);
  return ceiling / 2 + random() * (ceiling / 2);
}
