import type { Breaker } from "../breaker/breaker.js";
import type { BreakerStats } from "../breaker/types.js";
import type { CbFetch } from "./types.js";

/** One breaker's timed calls since it last closed or was reset. */
interface Tally {
  successes: number;
  failures: number;
  timed: number;
  totalMs: number;
  lastMs: number | undefined;
}

const newTally = (): Tally => ({
  successes: 0,
  failures: 0,
  timed: 0,
  totalMs: 0,
  lastMs: undefined,
});

const tracked = new WeakSet<CbFetch>();

/**
 * Adds `errorRate`, `meanLatencyMs` and `lastLatencyMs` to the `stats` of `cb`'s breakers,
 * counted from the instance's own `success`, `failure` and `statechange` events (which carry
 * `durationMs` once calls are timed). `createCbFetch` loads this module only where calls are
 * timed (`slowCallMs`, or `cbfetch/otel`), so a plain instance neither reads a clock per call
 * nor downloads this. Idempotent per instance.
 */
export function trackStats(cb: CbFetch): void {
  if (tracked.has(cb)) return;
  tracked.add(cb);
  // By breaker, so an evicted breaker takes its tally with it.
  const tallies = new WeakMap<Breaker, Tally>();
  const tallyOf = (key: string): Tally => {
    const breaker = cb.breaker(key);
    let tally = tallies.get(breaker);
    if (tally === undefined) {
      tally = newTally();
      tallies.set(breaker, tally);
      decorate(breaker, tally);
    }
    return tally;
  };
  const count = (key: string, failed: boolean, durationMs: number | undefined) => {
    const tally = tallyOf(key);
    if (failed) tally.failures++;
    else tally.successes++;
    if (durationMs === undefined) return; // an expired probe: no duration
    tally.timed++;
    tally.totalMs += durationMs;
    tally.lastMs = durationMs;
  };
  cb.addEventListener("success", (event) => count(event.key, false, event.durationMs));
  cb.addEventListener("failure", (event) => count(event.key, true, event.durationMs));
  cb.addEventListener("statechange", (event) => {
    // A new episode: the error rate and mean start again (the last duration stays).
    if (event.state !== "closed") return;
    const tally = tallyOf(event.key);
    Object.assign(tally, newTally(), { lastMs: tally.lastMs });
  });
}

/**
 * Gives one breaker (this object only, not its class) the tally's figures in `stats`, and a
 * `reset()` that clears the tally too: the core's `Breaker` carries none of this code.
 */
function decorate(breaker: Breaker, tally: Tally): void {
  // From the instance, not an import of the class: that would split it out of the core's chunk.
  const baseStats = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(breaker), "stats")?.get;
  const baseReset = breaker.reset;
  Object.defineProperties(breaker, {
    stats: {
      configurable: true,
      get: (): BreakerStats => {
        const { successes, failures, timed, totalMs, lastMs } = tally;
        const counted = successes + failures;
        return {
          ...(baseStats?.call(breaker) as BreakerStats),
          errorRate: counted === 0 ? undefined : failures / counted,
          meanLatencyMs: timed === 0 ? undefined : totalMs / timed,
          lastLatencyMs: lastMs,
        };
      },
    },
    reset: {
      configurable: true,
      writable: true,
      value: () => {
        Object.assign(tally, newTally());
        baseReset.call(breaker);
      },
    },
  });
}
