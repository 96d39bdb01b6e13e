// The page script of lifecycle.browser.test.ts, bundled for the browser by the harness: an app
// with an IndexedDB store and cross-tab sync, which records its page lifecycle events.
import { CircuitOpenError, createCbFetch } from "../../src/index.js";
import { idbStore } from "../../src/idb/index.js";

/** What a call gave: a response, or the error it rejected with. */
export type LifeCallResult =
  | { ok: boolean; status: number }
  | { error: string; message: string; retryAt?: number; state?: string };

export interface LifeTest {
  /** `cb.ready`, as `true` so that `page.evaluate` can await it. */
  ready: Promise<true>;
  call(path: string): Promise<LifeCallResult>;
  state(path: string): string;
  /**
   * This document's lifecycle events in order: `pageshow:<persisted>`, `pagehide:<persisted>`,
   * `freeze`, `resume`. The JavaScript heap of a page restored from the back/forward cache is
   * the one it left with, so this list spans the stay in the cache.
   */
  lifecycle: string[];
  /** Messages of every `storeerror` event so far. */
  storeErrors: string[];
}

declare global {
  interface Window {
    /** Installed by lifecycle.page.ts. */
    cbLife: LifeTest;
  }
}

const lifecycle: string[] = [];
addEventListener("pageshow", (event) => lifecycle.push(`pageshow:${event.persisted}`));
addEventListener("pagehide", (event) => lifecycle.push(`pagehide:${event.persisted}`));
document.addEventListener("freeze", () => lifecycle.push("freeze"));
document.addEventListener("resume", () => lifecycle.push("resume"));

const cb = createCbFetch({
  store: idbStore({ dbName: "cbfetch-lifecycle" }),
  sync: "lifecycle",
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
async function call(path: string): Promise<LifeCallResult> {
  try {
    const response = await cb(path);
    await response.text(); // frees the connection
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

window.cbLife = {
  ready: cb.ready.then(() => true),
  call,
  state: (path) => cb.state(path),
  lifecycle,
  storeErrors,
};
