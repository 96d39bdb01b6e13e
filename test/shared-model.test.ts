import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { CircuitState } from "../src/breaker/index.js";
import type { Permit } from "../src/breaker/permit.js";
import {
  BREAKER_NUMBERS,
  BREAKER_OTHERS,
  readGroup,
  resolveBreakerOptions,
} from "../src/breaker/options.js";
import { type Entry, Registry } from "../src/keys/registry.js";
import { decideLease, endLease, type Lease, type LeaseRef } from "../src/cloudflare/lease.js";
import { isOpen } from "../src/shared/compare.js";
import { type BreakerRecord, mergeRecords } from "../src/shared/record.js";
import { Replica } from "../src/shared/replica.js";
import { ManualClock } from "./helpers/clock.js";

// DESIGN §3, checked on the real replica code: 2–4 contexts (tabs or isolates) and a store,
// random calls and outcomes, forced operations, reloads and clock moves, and a network that
// delays, reorders, duplicates and drops every record (store answers included, so a store
// can answer late). After every step: no context holds "closed" for an open episode it has
// seen unless something succeeded (or was closed by hand) after that episode began. After
// delivering everything: every context and the store hold the same state.
// Seeded and reproducible: CBFETCH_SEED replays, fast-check prints the shrunk schedule.
const SEED = Number(process.env.CBFETCH_SEED ?? 20261130);
const RUNS = Number(process.env.CBFETCH_SHARED_RUNS ?? 5_000);
const KEY = "https://api.example";

type Step =
  | { op: "call"; c: number; ok: boolean }
  | { op: "start"; c: number }
  | { op: "finish"; c: number; i: number; ok: boolean }
  | { op: "forceOpen"; c: number }
  | { op: "forceClose"; c: number }
  | { op: "reset"; c: number }
  | { op: "reload"; c: number }
  | { op: "advance"; ms: number }
  | { op: "deliver"; i: number }
  | { op: "duplicate"; i: number }
  | { op: "drop"; i: number };

/** A record on its way: to a context, or to the store (which answers its sender). */
interface Message {
  to: number | "store";
  from: number | undefined;
  record: BreakerRecord | "load";
  /** A probe's outcome: the lease it ends (the object merges the record first). */
  lease?: LeaseRef;
  /** When that probe failed (it did). */
  failedAt?: number;
}

interface Context {
  replica: Replica;
  entry: Entry;
  /** Calls in flight; a probe's lease holder name when it holds the object's lease. */
  calls: Array<{ permit: Permit; startedAt: number; holder?: string; leaseUntil?: number }>;
  /** Open episodes (their `opened`) this context's record has held. */
  seen: Set<number>;
  /** This context's name as a lease holder (a reload is a new holder). */
  holder: string;
  /** Until when the object refused this context a probe (it makes no call before). */
  refusedUntil: number;
}

const options = resolveBreakerOptions(
  readGroup(
    "test",
    { failureThreshold: 2, openMs: 1_000, maxOpenMs: 8_000, probeTimeoutMs: 3_000, jitter: 0 },
    BREAKER_NUMBERS,
    BREAKER_OTHERS,
  ),
);

/**
 * With `withObject`, the store is a Durable Object that also grants half-open probe leases by
 * its record (`decideLease`), and a probe's end sends its outcome, which ends its lease
 * (`endLease`), as isolates do: a message like any write, so it may come late, twice or never
 * (the lease then expires). Then also: never two probes under valid leases at once, and once
 * the object knows a probe failed, nobody probes before its `retryAt` (unless a later open or
 * close replaced it).
 */
function simulate(contexts: number, steps: Step[], withObject = false): void {
  const clock = new ManualClock();
  const opts = { ...options, clock };
  const network: Message[] = [];
  let store: BreakerRecord | undefined;
  let lease: Lease | undefined;
  let holders = 0;
  /** Probes that failed and released their lease with the outcome: the new retryAt. */
  const failedProbes: Array<{ at: number; retryAt: number }> = [];
  const merge = (record: BreakerRecord) => {
    store = store === undefined ? record : mergeRecords(store, record);
  };
  /** When each open episode began, by its `opened`. */
  const episodes = new Map<number, number>();
  /** Times from which the origin was shown to work: a success's call start, a manual close. */
  const evidence: number[] = [];

  const send = (from: number, record: BreakerRecord) => {
    for (let to = 0; to < contexts; to++) if (to !== from) network.push({ to, from, record });
    network.push({ to: "store", from, record });
  };

  function makeContext(index: number): Context {
    const box: { context?: Context } = {};
    const registry = new Registry(
      { breaker: opts, maxBreakers: 10, preload: true },
      (_breaker, from: CircuitState, to: CircuitState) => {
        const context = box.context;
        if (context === undefined || context.replica.applying) return;
        const before = context.replica.recordOf(context.entry).opened;
        if (context.replica.changed(context.entry, from, to)) {
          const record = context.replica.recordOf(context.entry);
          if (record.opened !== before) episodes.set(record.opened, clock.now());
          send(index, record);
        }
      },
    );
    const replica = new Replica(registry, () => {}, clock);
    const entry = registry.get(KEY);
    const context: Context = {
      replica,
      entry,
      calls: [],
      seen: new Set(),
      holder: `holder-${++holders}`,
      refusedUntil: 0,
    };
    replica.share = () => send(index, replica.recordOf(entry));
    box.context = context;
    return context;
  }

  const ctx: Context[] = Array.from({ length: contexts }, (_, i) => makeContext(i));
  // Each context loads the stored record when it starts (the answer may come late).
  for (let i = 0; i < contexts; i++) network.push({ to: "store", from: i, record: "load" });

  const observe = () => {
    for (const context of ctx) {
      const record = context.replica.recordOf(context.entry);
      if (isOpen(record)) context.seen.add(record.opened);
    }
  };

  const check = (where: string) => {
    observe();
    ctx.forEach((context, c) => {
      if (context.entry.breaker.state !== "closed") return;
      for (const opened of context.seen) {
        const began = episodes.get(opened) ?? opened;
        if (!evidence.some((time) => time > began)) {
          throw new Error(
            `${where}: context ${c} is closed, but the open episode of ${began} it saw has no success or manual close after it`,
          );
        }
      }
    });
  };

  const deliver = (message: Message) => {
    if (message.to === "store") {
      if (message.record !== "load") merge(message.record);
      if (message.lease !== undefined) lease = endLease(lease, message.lease);
      // The object now knows the probe failed, unless a later episode has replaced it.
      const outcome = message.record;
      if (
        message.failedAt !== undefined &&
        outcome !== "load" &&
        store?.opened === outcome.opened
      ) {
        failedProbes.push({ at: message.failedAt, retryAt: outcome.retryAt });
      }
      // The store answers with what it holds (a save's answer, or a load).
      if (store !== undefined && message.from !== undefined) {
        network.push({ to: message.from, from: undefined, record: store });
      }
      return;
    }
    const context = ctx[message.to];
    if (context === undefined || message.record === "load") return;
    const before = context.replica.recordOf(context.entry);
    context.replica.apply(message.record, "test");
    const after = context.replica.recordOf(context.entry);
    // Monotonic: a merge never moves a record back.
    expect(after.opened).toBeGreaterThanOrEqual(before.opened);
    expect(after.closed).toBeGreaterThanOrEqual(before.closed);
  };

  /**
   * Object mode: a probe needs the object's lease (a synchronous call here). Returns the
   * lease's end, or undefined when refused (the permit is then released).
   */
  const acquire = (context: Context, permit: Permit): number | undefined => {
    const now = clock.now();
    if (!withObject || !permit.probe) return Number.POSITIVE_INFINITY;
    if (now < context.refusedUntil) {
      permit.release();
      return undefined;
    }
    const decision = decideLease(store, lease, context.holder, options.probeTimeoutMs, now);
    lease = decision.lease;
    const { answer } = decision;
    if (!answer.granted) {
      permit.release();
      if (answer.record !== undefined) context.replica.apply(answer.record, "object");
      context.refusedUntil = answer.until;
      return undefined;
    }
    // Mutual exclusion: no other probe runs under a valid lease.
    for (const other of ctx) {
      for (const call of other.calls) {
        // A probe a transition has discarded is no probe any more (nor is a settled one).
        const live = !call.permit.settled && !call.permit.discarded;
        if (call.leaseUntil !== undefined && call.leaseUntil > now && live) {
          throw new Error(`two probes at ${now}: ${call.holder} and ${context.holder}`);
        }
      }
    }
    // After a failed probe, nobody probes before its retryAt, unless replaced since.
    for (const failed of failedProbes) {
      const replaced =
        evidence.some((time) => time > failed.at) ||
        [...episodes.values()].some((began) => began > failed.at);
      if (now < failed.retryAt && !replaced) {
        throw new Error(`probe at ${now} before the retryAt ${failed.retryAt} of a failed probe`);
      }
    }
    return answer.until;
  };
  /** Object mode: a probe's end sends its outcome, which ends its lease (a write). */
  const release = (
    context: Context,
    c: number,
    holder: string | undefined,
    until: number | undefined,
    failed: boolean,
  ) => {
    if (!withObject || holder === undefined) return;
    const record = context.replica.recordOf(context.entry);
    const failedAt = failed && isOpen(record) ? clock.now() : undefined;
    network.push({ to: "store", from: c, record, lease: { holder, until }, failedAt });
  };

  for (const [n, step] of steps.entries()) {
    // Every step takes time: a context makes at most one change per millisecond.
    clock.advance(1);
    const context = "c" in step ? ctx[step.c % contexts] : undefined;
    switch (step.op) {
      case "call": {
        // A quick call: it starts and ends within this step.
        const permit = context?.entry.breaker.allow();
        if (context === undefined || permit === undefined) break;
        const until = acquire(context, permit);
        if (until === undefined) break;
        if (step.ok) {
          evidence.push(clock.now());
          permit.success();
        } else {
          permit.failure("status");
        }
        const holder = permit.probe ? context.holder : undefined;
        release(context, step.c % contexts, holder, until, !step.ok);
        break;
      }
      case "start": {
        const permit = context?.entry.breaker.allow();
        if (context === undefined || permit === undefined) break;
        const leaseUntil = acquire(context, permit);
        if (leaseUntil === undefined) break;
        const holder = permit.probe && withObject ? context.holder : undefined;
        context.calls.push({
          permit,
          startedAt: clock.now(),
          holder,
          leaseUntil: holder === undefined ? undefined : leaseUntil,
        });
        break;
      }
      case "finish": {
        const calls = context?.calls ?? [];
        const call = calls.splice(step.i % Math.max(1, calls.length), 1)[0];
        if (context === undefined || call === undefined) break;
        if (step.ok) {
          evidence.push(call.startedAt);
          call.permit.success();
        } else {
          call.permit.failure("status");
        }
        release(context, step.c % contexts, call.holder, call.leaseUntil, !step.ok);
        break;
      }
      case "forceOpen":
        context?.entry.breaker.forceOpen(2_000);
        break;
      case "forceClose":
      case "reset": {
        if (context === undefined) break;
        evidence.push(clock.now() - 0.5); // a manual close counts for what began before it
        if (step.op === "reset") context.entry.breaker.reset();
        else context.entry.breaker.forceClose();
        break;
      }
      case "reload": {
        const c = step.c % contexts;
        ctx[c] = makeContext(c);
        network.push({ to: "store", from: c, record: "load" });
        break;
      }
      case "advance":
        clock.advance(step.ms);
        break;
      case "deliver":
      case "duplicate":
      case "drop": {
        if (network.length === 0) break;
        const index = step.i % network.length;
        const message = network[index] as Message;
        if (step.op !== "duplicate") network.splice(index, 1);
        if (step.op !== "drop") deliver(message);
        break;
      }
    }
    check(`step ${n} (${step.op})`);
  }

  // Convergence: deliver everything, then let every context tell every other and the store
  // what it holds (a rejoining tab's hello, an isolate's next report), and deliver that too.
  const drain = () => {
    while (network.length > 0) {
      deliver(network.shift() as Message);
      check("drain");
    }
  };
  drain();
  ctx.forEach((context, c) => send(c, context.replica.recordOf(context.entry)));
  drain();
  const records = ctx.map((context) => context.replica.recordOf(context.entry));
  // The breakers agree too: same state and, when open, the same retryAt and backoff.
  const states = ctx.map((context) => {
    const { state, retryAt, reopenCount } = context.entry.breaker.exportState();
    return state === "closed" ? { state } : { state, retryAt, reopenCount };
  });
  for (const record of records) expect(record).toEqual(records[0]);
  if (store !== undefined) expect(store).toEqual(records[0]);
  for (const state of states) expect(state).toEqual(states[0]);
}

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    // Mostly failures: outages are where opens can be lost (and a success anywhere after an
    // open began is evidence that ends it, which would hide a lost open).
    arbitrary: fc.record({
      op: fc.constant("call" as const),
      c: fc.nat(3),
      ok: fc.nat(4).map((n) => n === 0),
    }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("start" as const), c: fc.nat(3) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("finish" as const),
      c: fc.nat(3),
      i: fc.nat(3),
      ok: fc.nat(2).map((n) => n === 0),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("forceOpen" as const), c: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("forceClose" as const), c: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("reset" as const), c: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("reload" as const), c: fc.nat(3) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("advance" as const),
      ms: fc.integer({ min: 1, max: 2_500 }),
    }),
  },
  { weight: 6, arbitrary: fc.record({ op: fc.constant("deliver" as const), i: fc.nat(50) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("duplicate" as const), i: fc.nat(50) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("drop" as const), i: fc.nat(50) }) },
);

describe("shared state: one causal merge for every context (model-based)", () => {
  it("a probe that started before another context's open does not end that open", () => {
    // A trips; its probe leaves; B, which has heard nothing, trips; A's probe succeeds. The
    // success is no evidence about B's open, which began after the probe was sent.
    const fail = (c: number): Step[] => [
      { op: "call", c, ok: false },
      { op: "call", c, ok: false },
    ];
    simulate(2, [
      ...fail(0),
      { op: "advance", ms: 1_000 },
      { op: "start", c: 0 },
      ...fail(1),
      { op: "finish", c: 0, i: 0, ok: true },
    ]);
  });

  it(`never loses an open and converges, over ${RUNS} random schedules`, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 4 }),
        fc.array(step, { maxLength: 80, size: "max" }),
        (contexts, steps) => simulate(contexts, steps),
      ),
      { seed: SEED, numRuns: RUNS },
    );
  }, 120_000);

  it(`with a Durable Object's probe leases: one probe at a time, none before a failed probe's retryAt (${RUNS} schedules)`, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 4 }),
        fc.array(step, { maxLength: 80, size: "max" }),
        (contexts, steps) => simulate(contexts, steps, true),
      ),
      { seed: SEED + 1, numRuns: RUNS },
    );
  }, 120_000);
});
