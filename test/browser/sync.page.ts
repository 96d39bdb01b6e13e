// The page script of sync.browser.test.ts, bundled for the browser by the harness. Every page
// (tab) of the test runs it: one cbfetch instance per tab, all on the channel `cbfetch:e2e`.
import { type CallResult, outcome, storeErrorsOf } from "./page-kit.js";
import { createCbFetch, systemClock } from "../../src/index.js";

/** What a call gave: a response, or the error it rejected with. */
export type SyncCallResult = CallResult;

/** One `statechange` of this tab, stamped on the machine's clock. */
export interface Transition {
  /** `performance.timeOrigin + performance.now()` when the event fired (epoch ms). */
  at: number;
  from: string | undefined;
  to: string;
  retryAt: number | undefined;
}

export interface Burst {
  /** Epoch ms just after the last of the calls was issued (before any of them settled). */
  issuedAt: number;
  results: SyncCallResult[];
}

export interface SyncTest {
  /** `cb.ready`, as `true` so that `page.evaluate` can await it. */
  ready: Promise<true>;
  call(path: string): Promise<SyncCallResult>;
  state(path: string): string;
  /** Every `statechange` so far, in order. */
  transitions: Transition[];
  /** Messages of every `storeerror` event so far. */
  storeErrors: string[];
  /**
   * Waits until the breaker's clock reads `at` or later, then issues `count` calls at once,
   * `<path>?tab=<tab>&n=<i>`, and resolves with what each gave.
   */
  burst(path: string, tab: string, count: number, at: number): Promise<Burst>;
}

declare global {
  interface Window {
    /** Installed by sync.page.ts, only on the cross-tab test page. */
    cbSync: SyncTest;
  }
}

// The instance's clock, given to it (each instance has a clock of its own): waiting on it
// guarantees the breaker sees `retryAt` as passed too.
const clock = systemClock();
const epochNow = () => performance.timeOrigin + performance.now();

const cb = createCbFetch({ sync: "e2e", failureThreshold: 2, openMs: 1500, jitter: 0, clock });

const transitions: Transition[] = [];
cb.addEventListener("statechange", (event) => {
  transitions.push({
    at: epochNow(),
    from: event.previousState,
    to: event.state,
    retryAt: event.retryAt,
  });
});

const storeErrors = storeErrorsOf(cb);

async function call(path: string): Promise<SyncCallResult> {
  return outcome(cb(path));
}

async function until(at: number): Promise<void> {
  // Timers may fire a little early or late: re-read the clock until it has passed `at`.
  while (clock.now() < at) {
    await new Promise((resolve) => setTimeout(resolve, Math.max(1, at - clock.now())));
  }
}

async function burst(path: string, tab: string, count: number, at: number): Promise<Burst> {
  await until(at);
  // All calls are started in one synchronous loop, before any of them can settle.
  const pending = Array.from({ length: count }, (_, i) => call(`${path}?tab=${tab}&n=${i}`));
  const issuedAt = epochNow();
  return { issuedAt, results: await Promise.all(pending) };
}

window.cbSync = {
  ready: cb.ready.then(() => true),
  call,
  state: (path) => cb.state(path),
  transitions,
  storeErrors,
  burst,
};
