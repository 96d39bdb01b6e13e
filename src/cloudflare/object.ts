import { DurableObject } from "cloudflare:workers";
import { type BreakerRecord, copyRecord, isNewer } from "../persist/record.js";
import { recordProblem } from "../persist/record-problem.js";

/** Longest probe lease granted, whatever a caller asks for. */
const MAX_LEASE_MS = 300_000;

/**
 * A Durable Object (SQLite-backed) holding the authoritative state of one breaker key, for all
 * isolates and cold starts. Isolates report records; it keeps the newest by the one merge rule
 * (`rev`, then the more cautious state, then `writer`) and answers with what it holds. In
 * half-open it grants one probe lease at a time, across every isolate; a lease expires, so a
 * dead isolate cannot wedge the key. Garbage, in storage or in a report, is ignored.
 */
export class CircuitBreakerObject<Env = unknown> extends DurableObject<Env> {
  #lease: { holder: string; until: number } | undefined;

  /** The stored record, or `undefined` (also for anything invalid found in storage). */
  async load(): Promise<BreakerRecord | undefined> {
    const stored = await this.ctx.storage.get("record");
    return stored !== undefined && recordProblem(stored) === undefined
      ? copyRecord(stored as BreakerRecord)
      : undefined;
  }

  /** Merges a reported record; returns the record held afterwards. */
  async report(value: unknown): Promise<BreakerRecord | undefined> {
    const current = await this.load();
    if (recordProblem(value) !== undefined) return current;
    const record = copyRecord(value as BreakerRecord);
    if (current !== undefined && current.key !== record.key) return current;
    if (!isNewer(record, current)) return current;
    await this.ctx.storage.put("record", record);
    // A new state ends any probe: its outcome, or a newer decision, is in.
    this.#lease = undefined;
    return record;
  }

  /** Grants the probe lease to `holder` unless another holder's lease is still running. */
  async acquireProbe(holder: string, leaseMs: number): Promise<boolean> {
    const now = Date.now();
    if (this.#lease !== undefined && this.#lease.until > now && this.#lease.holder !== holder) {
      return false;
    }
    const ms = Number.isFinite(leaseMs) ? Math.min(Math.max(leaseMs, 0), MAX_LEASE_MS) : 0;
    this.#lease = { holder: String(holder), until: now + ms };
    return true;
  }

  /** Ends `holder`'s lease early. */
  async releaseProbe(holder: string): Promise<void> {
    if (this.#lease?.holder === holder) this.#lease = undefined;
  }
}
