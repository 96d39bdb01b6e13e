/**
 * `cbfetch/idb`: a breaker store on IndexedDB (through idb-keyval), so an open circuit
 * survives a page reload. The core never imports this module.
 *
 * @packageDocumentation
 */
import { createStore, get, update, values, del } from "idb-keyval";
import { type BreakerRecord, mergeRecords } from "../shared/record.js";
import type { BreakerStore } from "../shared/store.js";
import { validRecord } from "../shared/validate.js";

/** Options of {@link idbStore}. */
export interface IdbStoreOptions {
  /**
   * The IndexedDB database. idb-keyval keeps one object store per database, so use a
   * database of its own.
   * @default "cbfetch"
   */
  dbName?: string;
  /**
   * The object store inside it.
   * @default "breakers"
   */
  storeName?: string;
}

/** Node's `process`, where there is one (tests, SSR); a browser build has none. */
declare const process: { env: { NODE_ENV?: string } } | undefined;

/**
 * Whether this is a development or test run: `NODE_ENV` is set and is not "production" (vitest
 * and jest set "test"). Written so that bundlers replacing `process.env.NODE_ENV` make it a
 * constant; in a browser without `process`, false.
 */
const development = () =>
  typeof process !== "undefined" &&
  process.env.NODE_ENV !== undefined &&
  process.env.NODE_ENV !== "production";

const NO_INDEXEDDB =
  "cbfetch/idb: there is no IndexedDB here (happy-dom, jsdom, Node), so idbStore() keeps breaker " +
  "state in memory only (one storeerror event). In tests, use memoryStore() from cbfetch, or " +
  'import "fake-indexeddb/auto" first. (This warning shows only where NODE_ENV is not "production".)';

/**
 * A {@link BreakerStore} on IndexedDB. It stores one record per key (an origin and numbers,
 * never a path, query, header or credential). A write merges with the stored record in one
 * transaction (`mergeRecords`), so tabs writing at once cannot lose each other's changes. Opening happens on first use: where
 * IndexedDB is missing or broken (private mode, quota, a blocked upgrade), the instance
 * reports one `storeerror` and carries on in memory. Where `indexedDB` is missing altogether in a
 * development or test run (happy-dom, jsdom: `NODE_ENV` set and not "production"), the store
 * also warns once on the console.
 */
export function idbStore(options: IdbStoreOptions = {}): BreakerStore {
  const { dbName = "cbfetch", storeName = "breakers" } = options;
  for (const [name, value] of Object.entries({ dbName, storeName })) {
    if (typeof value !== "string" || value === "") {
      throw new TypeError(`cbfetch: option "${name}" of idbStore must be a non-empty string`);
    }
  }
  let db: ReturnType<typeof createStore> | undefined;
  let warned = false;
  // Opened lazily, inside the async methods: a missing `indexedDB` then rejects, not throws.
  const store = () => {
    if (!warned && typeof indexedDB === "undefined" && development()) {
      warned = true;
      console.warn(NO_INDEXEDDB);
    }
    return (db ??= createStore(dbName, storeName));
  };
  return {
    async load(key) {
      return get(key, store());
    },
    async save(record: BreakerRecord) {
      let merged = record;
      // One read-modify-write transaction: tabs writing at once cannot lose each other's open.
      await update(
        record.key,
        (old: unknown) => {
          const valid = validRecord(old, record.key);
          merged = valid === undefined ? record : mergeRecords(valid, record);
          return merged;
        },
        store(),
      );
      return merged;
    },
    async loadAll() {
      return values(store());
    },
    async delete(key) {
      await del(key, store());
    },
  };
}
