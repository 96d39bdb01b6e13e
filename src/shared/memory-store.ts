import { type BreakerRecord, mergeRecords } from "./record.js";
import type { BreakerStore } from "./store.js";

/**
 * A store in memory. Shared by instances given the same store object, it lets a test (or a
 * Worker isolate) model a reload without any storage. Writes merge like every store's.
 */
export function memoryStore(): BreakerStore {
  const records = new Map<string, BreakerRecord>();
  const copy = (record: BreakerRecord): BreakerRecord => ({ ...record });
  return {
    async load(key) {
      const record = records.get(key);
      return record && copy(record);
    },
    async save(record) {
      const old = records.get(record.key);
      const merged = old === undefined ? copy(record) : mergeRecords(old, record);
      records.set(record.key, merged);
      return copy(merged);
    },
    async loadAll() {
      return Array.from(records.values(), copy);
    },
    async delete(key) {
      records.delete(key);
    },
  };
}
