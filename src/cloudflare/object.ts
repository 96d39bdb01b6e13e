/**
 * `cbfetch/cloudflare/object`: the Durable Object class that holds breaker state for every
 * isolate. Export it from your Worker and bind it (see the README); the rest of
 * `cbfetch/cloudflare` imports without it, in plain Node too.
 *
 * @packageDocumentation
 */
import { DurableObject, waitUntil } from "cloudflare:workers";
import { isOpen, sameRecord } from "../shared/compare.js";
import { type BreakerRecord, mergeRecords } from "../shared/record.js";
import { validRecord } from "../shared/validate.js";
import { decideLease, endLease, type Lease, type LeaseRef } from "./lease.js";
import { keepAliveWith } from "./store.js";
import type { ObjectProbeAnswer } from "./types.js";

// Where this class is loaded, so is `waitUntil`: the store hands it every write, so a change
// made inside some request's `waitUntil` work still reaches the object after that work ends.
keepAliveWith(waitUntil);

const PREFIX = "record:";

/**
 * A Durable Object (SQLite-backed) holding the authoritative record of a breaker key for all
 * isolates and cold starts. Isolates report records; it merges them with the same rule as
 * every store and tab (`mergeRecords`) and answers with what it holds. In half-open it grants
 * one probe lease at a time, and only when its record says a probe is due. Garbage, in storage
 * or in a report, is ignored. Once its key has been closed (or past its `retryAt`) and idle
 * for {@link CircuitBreakerObject.idleMs}, an alarm deletes its storage.
 */
export class CircuitBreakerObject<Env = unknown> extends DurableObject<Env> {
  /** How long a closed (or long-due) record is kept before the object deletes its storage. */
  protected idleMs = 3_600_000;
  #lease: Lease | undefined;

  /** The stored record of `key`, or `undefined` (also for anything invalid found in storage). */
  async load(key: string): Promise<BreakerRecord | undefined> {
    if (typeof key !== "string") return undefined;
    return validRecord(await this.ctx.storage.get(PREFIX + key), key, Date.now());
  }

  /**
   * Merges a reported record; returns the record held afterwards (`undefined` for garbage).
   * A report of a probe's outcome names the lease it ends (`lease`): one call for both.
   */
  async report(value: unknown, lease?: LeaseRef): Promise<BreakerRecord | undefined> {
    try {
      return await this.#merge(value);
    } finally {
      // Only once the outcome is stored: no lease is granted on the record before it.
      this.#lease = endLease(this.#lease, lease);
    }
  }

  async #merge(value: unknown): Promise<BreakerRecord | undefined> {
    const record = validRecord(value, undefined, Date.now());
    if (record === undefined) return undefined;
    const current = await this.load(record.key);
    const merged = current === undefined ? record : mergeRecords(current, record);
    if (current !== undefined && sameRecord(current, merged)) return merged;
    await this.ctx.storage.put(PREFIX + record.key, merged);
    await this.ctx.storage.setAlarm(this.#idleAt(merged));
    return merged;
  }

  /**
   * Grants `holder` the probe lease of `key` for `leaseMs`, unless the record says no probe is
   * due yet (open until its `retryAt`: after a failed probe, nobody probes before the new one)
   * or another holder's lease runs. A refusal says until when, with the record.
   */
  async acquireProbe(holder: string, leaseMs: number, key: string): Promise<ObjectProbeAnswer> {
    const decision = decideLease(await this.load(key), this.#lease, holder, leaseMs, Date.now());
    this.#lease = decision.lease;
    return decision.answer;
  }

  /**
   * Ends `holder`'s lease (the one granted until `until`, when given), after merging `record`
   * (the probe's outcome, as the holder has it), so the lease never ends before the object
   * knows whether the probe failed.
   */
  async releaseProbe(holder: string, record?: unknown, until?: number): Promise<void> {
    await this.report(record, { holder, until });
  }

  /** Deletes the object's storage once every record in it is idle; else waits for the last. */
  async alarm(): Promise<void> {
    const rows = await this.ctx.storage.list({ prefix: PREFIX });
    let latest = 0;
    for (const value of rows.values()) {
      const record = validRecord(value);
      if (record !== undefined) latest = Math.max(latest, this.#idleAt(record));
    }
    if (latest > Date.now()) await this.ctx.storage.setAlarm(latest);
    else await this.ctx.storage.deleteAll();
  }

  #idleAt(record: BreakerRecord): number {
    return (isOpen(record) ? record.retryAt : record.closed) + this.idleMs;
  }
}
