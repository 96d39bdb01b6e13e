// The page script of network.browser.test.ts, bundled for the browser by the harness. The page
// is on the harness origin; the APIs it calls are other origins (local servers on other
// ports). The test creates cbfetch instances by name and calls through them.
import { type CallResult, outcome, storeErrorsOf } from "./page-kit.js";
import { createStore, values } from "idb-keyval";
import { type CbFetch, createCbFetch } from "../../src/index.js";
import { idbStore } from "../../src/idb/index.js";

/** What a call gave: a response, or the error it rejected with. */
export type NetCallResult = CallResult;

/** The options the test may set (plain data: it crosses from Node into the page). */
export interface AppOptions {
  /** An IndexedDB store in this database. */
  dbName?: string;
  sync?: boolean;
  failureThreshold?: number;
  openMs?: number;
  jitter?: number;
  networkCheck?: string | false;
  timeoutMs?: number;
  maxConcurrent?: number;
}

export interface NetTest {
  /** Creates the instance `id`; resolves with `true` once it is ready. */
  create(id: string, options: AppOptions): Promise<true>;
  call(id: string, url: string): Promise<NetCallResult>;
  /** Calls with a `Request` made from `url` and `init` (plain data). */
  callRequest(id: string, url: string, init: RequestInit): Promise<NetCallResult>;
  state(id: string, url: string): string;
  /** Writes the instance's pending changes to its store. */
  flush(id: string): Promise<true>;
  /** The records stored in IndexedDB database `dbName` (idbStore's object store). */
  stored(dbName: string): Promise<unknown[]>;
  /** The records of every `state` message seen on BroadcastChannel `cbfetch:default`. */
  broadcast: unknown[];
  /** `online` and `offline` events of the window, in order. */
  networkEvents: string[];
  onLine(): boolean;
  /** Messages of every `storeerror` event of every instance. */
  storeErrors: string[];
}

declare global {
  interface Window {
    /** Installed by network.page.ts. */
    cbNet: NetTest;
  }
}

const apps = new Map<string, CbFetch>();
const storeErrors: string[] = [];
const networkEvents: string[] = [];
addEventListener("online", () => networkEvents.push("online"));
addEventListener("offline", () => networkEvents.push("offline"));

// A listener of its own on the sync channel: every record any instance of this page sends.
const broadcast: unknown[] = [];
new BroadcastChannel("cbfetch:default").onmessage = (event: MessageEvent) => {
  const message = event.data as { type?: string; records?: unknown[] };
  if (message?.type === "state") broadcast.push(...(message.records ?? []));
};

function app(id: string): CbFetch {
  const cb = apps.get(id);
  if (cb === undefined) throw new Error(`no instance ${id}`);
  return cb;
}

async function create(id: string, options: AppOptions): Promise<true> {
  const { dbName, sync, ...rest } = options;
  const cb = createCbFetch({
    // These tests are about the network rule, not load times: a busy CI machine's IndexedDB can
    // take longer than the default 200 ms to open (a test may still set its own).
    loadTimeoutMs: 10_000,
    ...rest,
    ...(dbName === undefined ? {} : { store: idbStore({ dbName }) }),
    ...(sync ? { sync: true } : {}),
  });
  storeErrorsOf(cb, storeErrors);
  apps.set(id, cb);
  await cb.ready;
  return true;
}

async function call(id: string, url: string): Promise<NetCallResult> {
  return outcome(app(id)(url));
}

window.cbNet = {
  create,
  call,
  callRequest: (id, url, init) => outcome(app(id)(new Request(url, init))),
  state: (id, url) => app(id).state(url),
  flush: (id) =>
    app(id)
      .flush()
      .then(() => true),
  stored: (dbName) => values(createStore(dbName, "breakers")),
  broadcast,
  networkEvents,
  onLine: () => navigator.onLine,
  storeErrors,
};
