import type { Clock } from "./types.js";

/** Wall clock ahead of the monotonic one by more than this means the device slept. */
const SLEEP_DRIFT_MS = 1000;

let shared: Clock | undefined;

/**
 * The default clock: `performance.timeOrigin + performance.now()`, so durations are monotonic
 * and immune to wall-clock changes, while the values are epoch ms that can leave this context.
 *
 * `performance.now()` does not tick while macOS or Linux sleeps; when `Date.now()` runs ahead
 * by more than a second we move the anchor forward, so an open circuit never outlives its
 * wall-clock `retryAt`. A wall clock set backwards is ignored: time never goes back.
 * In Workers `timeOrigin` is 0 and `now()` is already the epoch, so the sum is right there too.
 */
export function systemClock(): Clock {
  shared ??= createSystemClock();
  return shared;
}

/** A fresh system clock (tests use this; everything else shares {@link systemClock}). */
export function createSystemClock(): Clock {
  const perf = globalThis.performance;
  let anchor = perf.timeOrigin;
  let last = 0;
  return {
    now() {
      let t = anchor + perf.now();
      const wall = Date.now();
      if (wall - t > SLEEP_DRIFT_MS) {
        anchor += wall - t;
        t = wall;
      }
      if (t < last) t = last;
      last = t;
      return t;
    },
  };
}
