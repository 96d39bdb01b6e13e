/**
 * `cbfetch/cloudflare/object`: the Durable Object class that holds breaker state for every
 * isolate. Export it from your Worker and bind it (see the README); the rest of
 * `cbfetch/cloudflare` imports without it, in plain Node too.
 *
 * @packageDocumentation
 */
import { DurableObject, waitUntil } from "cloudflare:workers";
import { type BreakerRecord, isOpen, mergeRecords, sameRecord } from "../shared/record.js";
import { validRecord } from "../shared/validate.js";
import { keepAliveWith } from "./store.js";
import type { ObjectProbeAnswer } from "./types.js";

// Where this class is loaded, so is `waitUntil`: the store hands it every write, so a change
// made inside some request's `waitUntil` work still reaches the object after that work ends.
keepAliveWith(waitUntil);

/** Longest probe lease granted, whatever a caller asks for. */
const MAX_LEASE_MS = 300_000;
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
  #lease: { holder: string; until: number } | undefined;

  /** The stored record of `key`, or `undefined` (also for anything invalid found in storage). */
  async load(key: string): Promise<BreakerRecord | undefined> {
    if (typeof key !== "string") return undefined;
    return validRecord(await this.ctx.storage.get(PREFIX + key), key, Date.now());
  }

  /** Merges a reported record; returns the record held afterwards (`undefined` for garbage). */
  async report(value: unknown): Promise<BreakerRecord | undefined> {
    const record = validRecord(value, undefined, Date.now());
    if (record === undefined) return undefined;
    const current = await this.load(record.key);
    const merged = current === undefined ? record : mergeRecords(current, record);
    if (current !== undefined && sameRecord(current, merged)) return merged;
    await this.ctx.storage.put(PREFIX + record.key, merged);
    await this.ctx.storage.setAlarm(this.#idleAt(merged));
    // A new episode, or a close, ends any probe: its outcome, or a newer decision, is in.
    if (current === undefined || current.opened !== merged.opened || !isOpen(merged)) {
      this.#lease = undefined;
    }
    return merged;
  }

  /**
   * Grants `holder` the probe lease of `key` for `leaseMs`, unless the record says no probe is
   * due yet (open until its `retryAt`: after a failed probe, nobody probes before the new one)
   * or another holder's lease runs. A refusal says until when, with the record.
   */
  async acquireProbe(holder: string, leaseMs: number, key: string): Promise<ObjectProbeAnswer> {
    const now = Date.now();
    const record = await this.load(key);
    if (record !== undefined && isOpen(record) && now < record.retryAt) {
      return { granted: false, until: record.retryAt, record };
    }
    const lease = this.#lease;
    if (lease !== undefined && lease.until > now && lease.holder !== holder) {
      return { granted: false, until: lease.until, record };
    }
    const ms = Number.isFinite(leaseMs) ? Math.min(Math.max(leaseMs, 0), MAX_LEASE_MS) : 0;
    this.#lease = { holder: String(holder), until: now + ms };
    return { granted: true, until: now + ms };
  }

  /** Ends `holder`'s lease early. */
  async releaseProbe(holder: string): Promise<void> {
    if (this.#lease?.holder === holder) this.#lease = undefined;
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
