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

/**
 * A {@link BreakerStore} on IndexedDB. It stores one record per key (an origin and numbers,
 * never a path, query, header or credential). A write merges with the stored record in one
 * transaction (`mergeRecords`), so tabs writing at once cannot lose each other's changes. Opening happens on first use: where
 * IndexedDB is missing or broken (private mode, quota, a blocked upgrade), the instance
 * reports one `storeerror` and carries on in memory.
 */
export function idbStore(options: IdbStoreOptions = {}): BreakerStore {
  const { dbName = "cbfetch", storeName = "breakers" } = options;
  for (const [name, value] of Object.entries({ dbName, storeName })) {
    if (typeof value !== "string" || value === "") {
      throw new TypeError(`cbfetch: option "${name}" of idbStore must be a non-empty string`);
    }
  }
  let db: ReturnType<typeof createStore> | undefined;
  // Opened lazily, inside the async methods: a missing `indexedDB` then rejects, not throws.
  const store = () => (db ??= createStore(dbName, storeName));
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
