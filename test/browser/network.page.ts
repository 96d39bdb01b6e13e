// The page script of network.browser.test.ts, bundled for the browser by the harness. The page
// is on the harness origin; the APIs it calls are other origins (local servers on other
// ports). The test creates cbfetch instances by name and calls through them.
import { createStore, values } from "idb-keyval";
import { type CbFetch, CircuitOpenError, createCbFetch } from "../../src/index.js";
import { idbStore } from "../../src/idb/index.js";

/** What a call gave: a response, or the error it rejected with. */
export type NetCallResult =
  | { ok: boolean; status: number }
  | { error: string; message: string; retryAt?: number; state?: string };

/** The options the test may set (plain data: it crosses from Node into the page). */
export interface AppOptions {
  /** An IndexedDB store in this database. */
  dbName?: string;
  sync?: boolean;
  failureThreshold?: number;
  openMs?: number;
  jitter?: number;
}

export interface NetTest {
  /** Creates the instance `id`; resolves with `true` once it is ready. */
  create(id: string, options: AppOptions): Promise<true>;
  call(id: string, url: string): Promise<NetCallResult>;
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
    ...rest,
    ...(dbName === undefined ? {} : { store: idbStore({ dbName }) }),
    ...(sync ? { sync: true } : {}),
  });
  cb.addEventListener("storeerror", (event) => {
    const error = "error" in event ? event.error : undefined;
    storeErrors.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  });
  apps.set(id, cb);
  await cb.ready;
  return true;
}

// Results are plain data: Error objects do not survive the trip back to the test.
async function call(id: string, url: string): Promise<NetCallResult> {
  try {
    const response = await app(id)(url);
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

window.cbNet = {
  create,
  call,
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
