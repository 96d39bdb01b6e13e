/**
 * `cbfetch/idb`: a breaker store on IndexedDB (through idb-keyval), so an open circuit
 * survives a page reload. The core never imports this module.
 *
 * @packageDocumentation
 */
import { createStore, get, update, values, del } from "idb-keyval";
import { type BreakerRecord, isNewer } from "../persist/record.js";
import { recordProblem } from "../persist/record-problem.js";
import type { BreakerStore } from "../persist/store.js";

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
 * never a path, query, header or credential). A write never replaces a newer record, so
 * tabs writing at once cannot roll each other back. Opening happens on first use: where
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
      await update(
        record.key,
        (old: unknown) =>
          recordProblem(old, record.key) === undefined && !isNewer(record, old as BreakerRecord)
            ? old
            : record,
        store(),
      );
    },
    async loadAll() {
      return values(store());
    },
    async delete(key) {
      await del(key, store());
    },
  };
}
