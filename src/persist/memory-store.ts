import { type BreakerRecord, copyRecord, isNewer } from "./record.js";
import type { BreakerStore } from "./store.js";

/**
 * A store in memory: the default. Shared by instances given the same store object, it lets
 * a test (or a Worker isolate) model a reload without any storage.
 */
export function memoryStore(): BreakerStore {
  const records = new Map<string, BreakerRecord>();
  return {
    async load(key) {
      const record = records.get(key);
      return record && copyRecord(record);
    },
    async save(record) {
      if (isNewer(record, records.get(record.key))) records.set(record.key, copyRecord(record));
    },
    async loadAll() {
      return Array.from(records.values(), copyRecord);
    },
    async delete(key) {
      records.delete(key);
    },
  };
}
