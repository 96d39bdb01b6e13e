import type { CircuitState, Clock } from "../breaker/types.js";
import type { Entry, Registry } from "../keys/registry.js";
import { isOpen, sameRecord } from "./compare.js";
import { type BreakerRecord, mergeRecords, RECORD_VERSION } from "./record.js";
import { copyRecord, recordProblem } from "./validate.js";

export type { Entry, Registry } from "../keys/registry.js";

/** Reports a storage or channel problem for a key (`""`: the instance as a whole). */
export type Report = (key: string, error: unknown) => void;

/** What this module keeps per key, in `Entry.shared`. */
interface SharedEntry {
  /** Everything known about the key, merged: the local changes and every record received. */
  record: BreakerRecord;
  /** When the breaker last went half-open here: every probe of that phase started later. */
  halfOpenAt: number;
}

const empty = (key: string): BreakerRecord => ({
  v: RECORD_VERSION,
  key,
  opened: 0,
  retryAt: 0,
  reopens: 0,
  closed: 0,
});

/**
 * This instance's replica of the shared records: it turns local transitions into records and
 * merges records from stores, tabs and Durable Objects into the breakers (see
 * {@link mergeRecords}). A change that comes from elsewhere is not sent back out.
 */
export class Replica {
  readonly registry: Registry;
  /** Reports a problem as a `storeerror` event (the instance's own reporter). */
  readonly report: Report;
  readonly clock: Clock;
  /** When this instance started: every call it made began later. */
  readonly startedAt: number;
  /** Stores and sends a record this instance changed (set by the owner). */
  share: (entry: Entry) => void = () => {};
  #applying = false;
  #oldVersionReported = false;

  constructor(registry: Registry, report: Report, clock: Clock) {
    this.registry = registry;
    this.report = report;
    this.clock = clock;
    this.startedAt = clock.now();
  }

  /** True while a record from elsewhere is being applied. */
  get applying(): boolean {
    return this.#applying;
  }

  /** The merged record of `entry`. */
  recordOf(entry: Entry): BreakerRecord {
    return this.#shared(entry).record;
  }

  /** Whether this instance knows anything worth telling about `entry`. */
  knows(entry: Entry): boolean {
    const record = (entry.shared as SharedEntry | undefined)?.record;
    return record !== undefined && (record.opened > 0 || record.closed > 0);
  }

  /**
   * A local transition of `entry`'s breaker. Returns true when its record changed (to be stored
   * and sent): an open starts a new episode, later than anything known; a close after a probe
   * dates its evidence from when the probe phase began, so it cannot end an open that began
   * after the probe was sent. Failure counts in the closed state stay local.
   */
  changed(entry: Entry, from: CircuitState, to: CircuitState): boolean {
    const now = this.clock.now();
    const shared = this.#shared(entry);
    const record = shared.record;
    if (to === "half-open") {
      shared.halfOpenAt = now;
      return false;
    }
    if (to === "open") {
      const { retryAt, reopenCount } = entry.breaker.exportState();
      shared.record = {
        ...record,
        opened: Math.max(now, record.opened + 1, record.closed + 1),
        retryAt,
        reopens: reopenCount,
      };
      return true;
    }
    if (from === "closed") return false;
    const evidence = from === "half-open" ? shared.halfOpenAt : now;
    shared.record = { ...record, closed: Math.max(evidence, record.opened + 1, record.closed) };
    return true;
  }

  /**
   * Merges `value` (from a store, another tab or a Durable Object) into its key's record and
   * moves the breaker if the merged state differs. An invalid value is ignored and reported.
   * When this instance then holds something the sender does not know (a success seen here
   * that ends the open it sent), that is shared in turn. `key`: the key asked for. Returns
   * whether anything changed here.
   */
  apply(value: unknown, source: string, key?: string): boolean {
    const problem = recordProblem(value, key, this.clock.now());
    if (problem !== undefined) {
      const oldVersion = problem.startsWith("unsupported version");
      if (!oldVersion || !this.#oldVersionReported) {
        this.#oldVersionReported ||= oldVersion;
        const named = (value as { key?: unknown } | null)?.key;
        this.report(
          typeof named === "string" ? named : (key ?? ""),
          new TypeError(`cbfetch: ignored a ${source} record: ${problem}`),
        );
      }
      return false;
    }
    const incoming = copyRecord(value as BreakerRecord);
    const entry = this.registry.get(incoming.key);
    const shared = this.#shared(entry);
    const before = shared.record;
    let merged = mergeRecords(before, incoming);
    let news = false;
    // A call this instance made succeeded, and every one of its calls began after that open:
    // the origin answered after the open began, which ends it (a store answering late with
    // the state of an earlier page must not re-open a circuit that works).
    if (isOpen(merged) && merged.opened < this.startedAt && entry.breaker.stats.successes > 0) {
      merged = { ...merged, closed: this.startedAt };
      news = true;
    }
    if (sameRecord(merged, before)) return false;
    shared.record = merged;
    this.#project(entry, before, merged);
    if (news) this.share(entry);
    return true;
  }

  /** Moves the breaker to what `after` says, if that differs from what `before` said. */
  #project(entry: Entry, before: BreakerRecord, after: BreakerRecord): void {
    const { breaker } = entry;
    const local = breaker.exportState().state;
    const open = isOpen(after);
    const newEpisode =
      !isOpen(before) ||
      after.opened !== before.opened ||
      after.retryAt !== before.retryAt ||
      after.reopens !== before.reopens;
    if (open ? local !== "closed" && !newEpisode : local === "closed") return;
    this.#applying = true;
    try {
      breaker.importState(
        open
          ? {
              state: "open",
              retryAt: after.retryAt,
              reopenCount: after.reopens,
              consecutiveFailures: 0,
            }
          : { state: "closed", retryAt: 0, reopenCount: 0, consecutiveFailures: 0 },
      );
    } finally {
      this.#applying = false;
    }
  }

  #shared(entry: Entry): SharedEntry {
    return ((entry.shared as SharedEntry | undefined) ??= {
      record: empty(entry.breaker.key),
      halfOpenAt: 0,
    });
  }
}
