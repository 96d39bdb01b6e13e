// The page script of lifecycle.browser.test.ts, bundled for the browser by the harness: an app
// with an IndexedDB store and cross-tab sync, which records its page lifecycle events.
import { type CallResult, outcome, storeErrorsOf } from "./page-kit.js";
import { createCbFetch } from "../../src/index.js";
import { idbStore } from "../../src/idb/index.js";

/** What a call gave: a response, or the error it rejected with. */
export type LifeCallResult = CallResult;

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

const storeErrors = storeErrorsOf(cb);

async function call(path: string): Promise<LifeCallResult> {
  return outcome(cb(path));
}

window.cbLife = {
  ready: cb.ready.then(() => true),
  call,
  state: (path) => cb.state(path),
  lifecycle,
  storeErrors,
};
