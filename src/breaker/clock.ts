import type { Clock } from "./types.js";

/**
 * The default clock (each instance and breaker gets its own, from {@link systemClock}): epoch ms
 * that advance with `performance.now()`, so durations are monotonic and immune to a wall clock
 * set back, while the values can leave this context (stored, broadcast).
 *
 * It reads `performance` and `Date` at each call, so fakes installed later apply, and:
 * - follows `Date.now()` at once whenever it runs ahead: `performance.now()` does not tick while
 *   macOS or Linux sleeps, so an open circuit never outlives its wall-clock `retryAt` (and a
 *   fake `Date` moved forward, say `vi.setSystemTime`, moves it exactly);
 * - ignores `Date.now()` going back: inside one timeline it never goes back;
 * - starts a new timeline at `Date.now()` when `Date` or `performance` is another object than
 *   at its last reading (a test's fake timers installed or removed), so a test's time neither
 *   freezes nor leaks into the next one.
 * In Workers `performance.now()` is the epoch and follows `Date.now()`, so it is right there too.
 * A class rather than a closure: a breaker of its own carries one small object.
 */
class SystemClock implements Clock {
  #anchor = -Infinity;
  #last = -Infinity;
  #date: unknown;
  #perf: unknown;

  now(): number {
    const p = performance.now();
    const wall = Date.now();
    // A new timeline (or the first reading): anchor on the wall clock, forget the last value.
    if (this.#date !== Date || this.#perf !== performance) {
      this.#date = Date;
      this.#perf = performance;
      this.#last = this.#anchor = -Infinity;
    }
    let t = this.#anchor + p;
    if (wall > t) {
      this.#anchor = wall - p;
      t = wall;
    }
    return (this.#last = t < this.#last ? this.#last : t);
  }
}

/** A new system clock: see {@link SystemClock}. */
export function systemClock(): Clock {
  return new SystemClock();
}
