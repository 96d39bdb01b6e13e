// The page script of persistence.browser.test.ts, bundled for the browser by the harness. It
// creates a cbfetch instance on IndexedDB and hands the test a small API on `window.cbTest`.
import { type CallResult, outcome, storeErrorsOf } from "./page-kit.js";

export type { CallResult };
import { createCbFetch } from "../../src/index.js";
import { idbStore } from "../../src/idb/index.js";

export interface CbTest {
  /** `cb.ready`, as `true` so that `page.evaluate` can await it. */
  ready: Promise<true>;
  call(path: string): Promise<CallResult>;
  state(path: string): string;
  /** Messages of every `storeerror` event so far. */
  storeErrors: string[];
  /** With `?call=<path>`: the call made while the script starts, before `ready` resolves. */
  firstCall: Promise<CallResult> | undefined;
}

declare global {
  interface Window {
    /** Installed by persistence.page.ts, only on the e2e test page. */
    cbTest: CbTest;
  }
}

const cb = createCbFetch({
  store: idbStore({ dbName: "cbfetch-e2e" }),
  failureThreshold: 3,
  openMs: 60_000,
  jitter: 0,
});

const storeErrors = storeErrorsOf(cb);

async function call(path: string): Promise<CallResult> {
  return outcome(cb(path));
}

// A real app fetches as soon as it starts, without waiting for `ready`: `?call=` does that.
const firstPath = new URLSearchParams(location.search).get("call");

window.cbTest = {
  ready: cb.ready.then(() => true),
  call,
  state: (path) => cb.state(path),
  storeErrors,
  firstCall: firstPath === null ? undefined : call(firstPath),
};
