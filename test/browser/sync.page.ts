// The page script of sync.browser.test.ts, bundled for the browser by the harness. Every page
// (tab) of the test runs it: one cbfetch instance per tab, all on the channel `cbfetch:e2e`.
import { CircuitOpenError, createCbFetch, systemClock } from "../../src/index.js";

/** What a call gave: a response, or the error it rejected with. */
export type SyncCallResult =
  | { ok: boolean; status: number }
  | { error: string; message: string; retryAt?: number; retryAfterMs?: number; state?: string };

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

const storeErrors: string[] = [];
cb.addEventListener("storeerror", (event) => {
  const error = "error" in event ? event.error : undefined;
  storeErrors.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
});

// Results are plain data: Error objects do not survive the trip back to the test.
async function call(path: string): Promise<SyncCallResult> {
  try {
    const response = await cb(path);
    // Read the body so the connection is free again; its content does not matter.
    await response.text();
    return { ok: response.ok, status: response.status };
  } catch (error) {
    if (error instanceof CircuitOpenError) {
      const { name, message, retryAt, retryAfterMs, state } = error;
      return { error: name, message, retryAt, retryAfterMs, state };
    }
    return error instanceof Error
      ? { error: error.name, message: error.message }
      : { error: typeof error, message: String(error) };
  }
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
