// The page script of shared-state.browser.test.ts, bundled for the browser by the harness
// (with code splitting: the store and sync code is a chunk of its own, loaded on demand). Each
// page (tab) configures its cbfetch instance from its query string:
//   ?db=<name>        an idbStore on the IndexedDB database <name> (no store without it)
//   &sync=<name>      cross-tab sync on the channel `cbfetch:<name>` (no sync without it)
//   &threshold=<n>    failureThreshold (default 2)
//   &call=<path>      a call made as soon as the script runs, before `ready`
// and hands the test a small API on `window.cbShared`.
import { type CallResult, outcome, storeErrorsOf } from "./page-kit.js";
import { createCbFetch } from "../../src/index.js";
import { idbStore } from "../../src/idb/index.js";

/** Epoch ms on this page's clock (the same machine clock in every page). */
const epochNow = () => performance.timeOrigin + performance.now();
/** When this module started to run, before `createCbFetch` (epoch ms). */
const scriptStart = epochNow();

/** What a call gave: a response, or the error it rejected with. */
export type SharedCallResult = CallResult;

/** What a scheduled manual burst saw (all times epoch ms on the page's clock). */
export interface Burst {
  /** When the timer task that runs the burst started (it busy-waits until `at`). */
  taskStart: number;
  /** When the burst ran: at or after `at`, in that same task. */
  ranAt: number;
  /** Messages the observer got on the sync channel between scheduling and the burst. */
  messagesBefore: number;
  /** The breaker's state right after the burst, before any message could be delivered. */
  stateAfter: string;
}

/** A resource the page loaded, from Resource Timing (epoch ms). */
export interface Loaded {
  path: string;
  startTime: number;
  responseEnd: number;
}

export interface SharedTest {
  /** `cb.ready`, as `true` so that `page.evaluate` can await it. */
  ready: Promise<true>;
  call(path: string): Promise<SharedCallResult>;
  state(path: string): string;
  flush(): Promise<true>;
  /** Messages of every `storeerror` event so far. */
  storeErrors: string[];
  /** With `?call=<path>`: the call made while the script starts, before `ready` resolves. */
  firstCall: Promise<SharedCallResult & { settledAt: number }> | undefined;
  scriptStart: number;
  /** The scripts this page loaded (Resource Timing), in order. */
  loaded(): Loaded[];
  /**
   * At epoch `at`, in one synchronous block, applies `ops` to this origin's breaker through the
   * manual API ("F" = `recordFailure()`, "S" = `recordSuccess()`). The timer fires `leadMs`
   * early and the task busy-waits until `at`: a task that started before any peer ran its own
   * block cannot have delivered the peer's messages before its block.
   */
  burst(ops: string, at: number, leadMs: number): Promise<Burst>;
}

declare global {
  interface Window {
    /** Installed by shared-state.page.ts, only on this test's pages. */
    cbShared: SharedTest;
  }
}

const params = new URLSearchParams(location.search);
const db = params.get("db");
const sync = params.get("sync");

// A test about merging, not load times, gives the load room (a busy CI machine's IndexedDB
// can take longer than the default 200 ms to open).
const loadTimeoutMs = params.get("loadTimeoutMs");

const cb = createCbFetch({
  ...(db === null ? {} : { store: idbStore({ dbName: db }) }),
  ...(loadTimeoutMs === null ? {} : { loadTimeoutMs: Number(loadTimeoutMs) }),
  ...(sync === null ? {} : { sync }),
  failureThreshold: Number(params.get("threshold") ?? 2),
  openMs: 60_000,
  jitter: 0,
});

const storeErrors = storeErrorsOf(cb);

async function call(path: string): Promise<SharedCallResult> {
  return outcome(cb(path));
}

// A second listener on the sync channel: it hears the peers' messages (and this tab's own).
let messages = 0;
if (sync !== null) new BroadcastChannel(`cbfetch:${sync}`).onmessage = () => void messages++;

function burst(ops: string, at: number, leadMs: number): Promise<Burst> {
  const breaker = cb.breaker(location.origin);
  const seen = messages;
  return new Promise((resolve) => {
    setTimeout(
      () => {
        const taskStart = epochNow();
        while (epochNow() < at) {
          // Busy-wait: this task keeps the page's event loop, so no message is delivered.
        }
        const ranAt = epochNow();
        const messagesBefore = messages - seen;
        for (const op of ops) {
          if (op === "F") breaker.recordFailure();
          else breaker.recordSuccess();
        }
        resolve({ taskStart, ranAt, messagesBefore, stateAfter: breaker.state });
      },
      Math.max(0, at - leadMs - epochNow()),
    );
  });
}

function loaded(): Loaded[] {
  return performance
    .getEntriesByType("resource")
    .filter((entry) => entry.name.endsWith(".js"))
    .map((entry) => ({
      path: new URL(entry.name).pathname,
      startTime: performance.timeOrigin + entry.startTime,
      responseEnd: performance.timeOrigin + (entry as PerformanceResourceTiming).responseEnd,
    }));
}

// A real app fetches as soon as it starts, without waiting for `ready`: `?call=` does that.
const firstPath = params.get("call");

window.cbShared = {
  ready: cb.ready.then(() => true),
  call,
  state: (path) => cb.state(path),
  flush: () => cb.flush().then(() => true),
  storeErrors,
  firstCall:
    firstPath === null
      ? undefined
      : call(firstPath).then((result) => ({ ...result, settledAt: epochNow() })),
  scriptStart,
  loaded,
  burst,
};
