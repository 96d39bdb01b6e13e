import type { Breaker } from "../breaker/breaker.js";
import type { BreakerStats } from "../breaker/types.js";

/** The events `trackStats` counts (the instance's own, with `durationMs` once calls are timed). */
interface CountedEvent extends Event {
  readonly key: string;
  readonly state: string;
  readonly durationMs: number | undefined;
}

/** What `trackStats` needs of a fetch instance. */
export interface Metered {
  breaker(key: string): Breaker;
  addEventListener(type: string, listener: (event: CountedEvent) => void): void;
}

/** One breaker's timed calls since it last closed or was reset: its `stats` figures. */
class Tally {
  successes = 0;
  failures = 0;
  timed = 0;
  totalMs = 0;
  lastMs: number | undefined;

  /** The figures for the breaker's `stats`. */
  stats(): Pick<BreakerStats, "errorRate" | "meanLatencyMs" | "lastLatencyMs"> {
    const counted = this.successes + this.failures;
    return {
      errorRate: counted === 0 ? undefined : this.failures / counted,
      meanLatencyMs: this.timed === 0 ? undefined : this.totalMs / this.timed,
      lastLatencyMs: this.lastMs,
    };
  }

  /** Starts again (the last duration stays, unless the breaker is reset). */
  reset(all = true): void {
    this.successes = this.failures = this.timed = this.totalMs = 0;
    if (all) this.lastMs = undefined;
  }
}

const tracked = new WeakSet<Metered>();

/**
 * Adds `errorRate`, `meanLatencyMs` and `lastLatencyMs` to the `stats` of `cb`'s breakers (each
 * breaker's `meter`, which its `stats` and `reset()` call), counted from the instance's own
 * `success`, `failure` and `statechange` events. `createCbFetch` loads this module only where
 * calls are timed (`slowCallMs`, or `cbfetch/otel`), so a plain instance neither reads a clock
 * per call nor downloads this. Idempotent per instance.
 */
export function trackStats(cb: Metered): void {
  if (tracked.has(cb)) return;
  tracked.add(cb);
  const tallyOf = (key: string): Tally => {
    const breaker = cb.breaker(key);
    return (breaker.meter ??= new Tally()) as Tally;
  };
  const count = (event: CountedEvent, failed: boolean) => {
    const tally = tallyOf(event.key);
    if (failed) tally.failures++;
    else tally.successes++;
    const { durationMs } = event;
    if (durationMs === undefined) return; // an expired probe: no duration
    tally.timed++;
    tally.totalMs += durationMs;
    tally.lastMs = durationMs;
  };
  cb.addEventListener("success", (event) => count(event, false));
  cb.addEventListener("failure", (event) => count(event, true));
  // A new episode: the error rate and mean start again.
  cb.addEventListener("statechange", (event) => {
    if (event.state === "closed") tallyOf(event.key).reset(false);
  });
}

/** Hooks the meter into a fetch instance (which loads this part once its calls are timed). */
export function install(_core: unknown, instance: Metered): void {
  trackStats(instance);
}
