import { type BreakerRecord, isNewer, RECORD_VERSION } from "../persist/record.js";
import { recordProblem } from "../persist/record-problem.js";
import type { Entry, Registry } from "./registry.js";

/** Reports a storage or channel problem for a key (`""`: the instance as a whole). */
export type Report = (key: string, error: unknown) => void;

/**
 * The bookkeeping shared by the store and the cross-tab channel: each entry's revision, this
 * instance's writer id, and adopting records from elsewhere by the one merge rule (`rev`, then
 * `writer`). A change that comes from elsewhere is not sent back out.
 */
export class Replica {
  /** This instance's id in the records it makes. */
  readonly writer = Math.random().toString(36).slice(2, 12);
  readonly registry: Registry;
  /** Reports a problem as a `storeerror` event (the instance's own reporter). */
  readonly report: Report;
  #applying = false;

  constructor(registry: Registry, report: Report) {
    this.registry = registry;
    this.report = report;
  }

  /** True while a record from elsewhere is being applied. */
  get applying(): boolean {
    return this.#applying;
  }

  /** A local change: the entry's next revision is ours. */
  bump(entry: Entry): void {
    entry.rev++;
    entry.writer = this.writer;
  }

  /** The record of `entry` as it stands. */
  recordOf(entry: Entry): BreakerRecord {
    return {
      v: RECORD_VERSION,
      key: entry.breaker.key,
      ...entry.breaker.exportState(),
      rev: entry.rev,
      writer: entry.writer,
    };
  }

  /**
   * Adopts `value` (from a store or another tab) if it is a valid record newer than what its
   * entry has; an invalid one is ignored and reported. `key`, when given, is the key asked for.
   */
  apply(value: unknown, source: string, key?: string): boolean {
    const problem = recordProblem(value, key);
    if (problem !== undefined) {
      const named = (value as { key?: unknown } | null)?.key;
      this.report(
        typeof named === "string" ? named : (key ?? ""),
        new TypeError(`cbfetch: ignored a ${source} record: ${problem}`),
      );
      return false;
    }
    const record = value as BreakerRecord;
    const entry = this.registry.get(record.key);
    const state = entry.breaker.exportState().state;
    if (!isNewer(record, { rev: entry.rev, writer: entry.writer, state })) return false;
    entry.rev = record.rev;
    entry.writer = record.writer;
    this.#applying = true;
    try {
      entry.breaker.importState(record);
    } finally {
      this.#applying = false;
    }
    return true;
  }
}
