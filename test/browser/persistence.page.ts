// The page script of persistence.browser.test.ts, bundled for the browser by the harness. It
// creates a cbfetch instance on IndexedDB and hands the test a small API on `window.cbTest`.
import { CircuitOpenError, createCbFetch } from "../../src/index.js";
import { idbStore } from "../../src/idb/index.js";

/** What a call gave: a response, or the error it rejected with. */
export type CallResult =
  | { ok: boolean; status: number }
  | { error: string; message: string; retryAt?: number; state?: string };

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

const storeErrors: string[] = [];
cb.addEventListener("storeerror", (event) => {
  const error = "error" in event ? event.error : undefined;
  storeErrors.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
});

// Results are plain data: Error objects do not survive the trip back to the test.
async function call(path: string): Promise<CallResult> {
  try {
    const response = await cb(path);
    return { ok: response.ok, status: response.status };
  } catch (error) {
    if (error instanceof CircuitOpenError) {
      const { name, message, retryAt, state } = error;
      return { error: name, message, retryAt, state };
    }
    return error instanceof Error
      ? { error: error.name, message: error.message }
      : { error: typeof error, message: String(error) };
  }
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
