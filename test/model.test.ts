import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { systemClock } from "../src/breaker/clock.js";
import { type Breaker, createBreaker, type Permit } from "../src/index.js";
import { ManualClock } from "./helpers/clock.js";

// Model-based tests: a small reference model of DESIGN §2, written plainly from the design,
// and random sequences of calls, outcomes, clock moves and forced operations. After every
// step the engine and the model must agree on the state, on admission and on retryAt.
// Seeded and reproducible: set CBFETCH_SEED to replay; fast-check prints the seed and the
// shrunk sequence of a failure.
const SEED = Number(process.env.CBFETCH_SEED ?? 20261122);
const RUNS = Number(process.env.CBFETCH_RUNS ?? 10_000);

interface Config {
  failureThreshold: number;
  successThreshold: number;
  halfOpenMaxProbes: number;
  probeTimeoutMs: number;
  openMs: number;
  backoff: number;
  maxOpenMs: number;
}

type Step =
  | { op: "call" }
  | {
      op: "settle";
      which: number;
      outcome: "success" | "failure" | "release" | "retry-after";
      ms: number;
    }
  | { op: "advance"; ms: number }
  | { op: "forceOpen"; ms: number }
  | { op: "forceClose" }
  | { op: "reset" }
  | { op: "recordSuccess" }
  | { op: "recordFailure" };

/** The reference model: the design's rules, one plain function per event. */
class Model {
  state: "closed" | "open" | "half-open" = "closed";
  openUntil = 0;
  reopens = 0;
  consecutive = 0;
  probeSuccesses = 0;
  /** Probes in flight: id and deadline, oldest first. */
  probes: Array<{ id: number; expiresAt: number }> = [];
  /** Each issued permit: the generation it belongs to (a transition starts a new one). */
  generation = 0;

  constructor(
    private readonly c: Config,
    private readonly now: () => number,
  ) {}

  private go(state: Model["state"]) {
    this.state = state;
    this.generation++;
    // Probes in flight belong to the state being left: they are settled (ignored) here, so
    // nothing they report later counts, not even a Retry-After.
    for (const probe of this.probes) {
      const permit = this.permits.get(probe.id);
      if (permit) permit.settled = true;
    }
    this.probes = [];
    this.probeSuccesses = 0;
  }
  private open(until?: number) {
    const now = this.now();
    const duration = Math.min(this.c.openMs * this.c.backoff ** this.reopens, this.c.maxOpenMs);
    this.openUntil = Math.min(until ?? now + duration, now + this.c.maxOpenMs);
    this.go("open");
  }
  private close() {
    this.reopens = 0;
    this.consecutive = 0;
    if (this.state !== "closed") this.go("closed");
  }
  /** Time-driven rules, applied when the breaker is used (never on a read). */
  private lazy() {
    const now = this.now();
    if (this.state === "open" && now >= this.openUntil) this.go("half-open");
    else if (this.state === "half-open" && this.probes[0] && this.probes[0].expiresAt <= now) {
      this.reopens++;
      this.open(); // a probe that never settled counts as failed
    }
  }

  /** What a read of `state` says: an open circuit that is due reads as half-open. */
  read(): Model["state"] {
    return this.state === "open" && this.now() >= this.openUntil ? "half-open" : this.state;
  }
  retryAt(): number | undefined {
    if (this.state === "closed") return undefined;
    if (this.state === "open") return Math.max(this.now(), this.openUntil);
    return this.probes[0]?.expiresAt ?? this.now();
  }

  /** Every permit issued, by id: a manual record settles the same permit a call holds. */
  permits = new Map<number, { generation: number; probe: boolean; settled?: boolean }>();

  allow(id: number): { generation: number; probe: boolean } | undefined {
    if (this.state === "closed") return { generation: this.generation, probe: false };
    this.lazy();
    if (this.state === "half-open" && this.probes.length < this.c.halfOpenMaxProbes) {
      this.probes.push({ id, expiresAt: this.now() + this.c.probeTimeoutMs });
      const permit = { generation: this.generation, probe: true };
      this.permits.set(id, permit);
      return permit;
    }
    return undefined;
  }

  settle(
    id: number,
    permit: { generation: number; probe: boolean; settled?: boolean },
    outcome: "success" | "failure" | "release",
    retryAt?: number,
  ) {
    if (permit.probe) {
      if (permit.settled) return;
      permit.settled = true;
      this.probes = this.probes.filter((p) => p.id !== id);
    }
    if (outcome === "release") return;
    if (permit.generation !== this.generation) {
      // A call from before a transition: only a Retry-After still counts. It opens the
      // circuit, or keeps an open one open until then if that is longer ("until then,
      // exactly", clamped to maxOpenMs); a shorter one changes nothing.
      if (retryAt === undefined) return;
      if (this.state !== "open") this.failure(retryAt);
      else
        this.openUntil = Math.max(this.openUntil, Math.min(retryAt, this.now() + this.c.maxOpenMs));
      return;
    }
    if (outcome === "success") this.success();
    else this.failure(retryAt);
  }

  success() {
    if (this.state === "closed") this.consecutive = 0;
    else if (this.state === "half-open" && ++this.probeSuccesses >= this.c.successThreshold) {
      this.close();
    }
  }

  failure(retryAt?: number) {
    if (this.state === "half-open") {
      this.reopens++;
      this.open(retryAt);
    } else if (this.state === "closed") {
      this.consecutive++;
      if (retryAt !== undefined || this.consecutive >= this.c.failureThreshold) this.open(retryAt);
    }
  }

  /** recordSuccess/recordFailure without a permit: the oldest probe, or the state's own. */
  manual(outcome: "success" | "failure") {
    if (this.state !== "closed") this.lazy();
    if (this.state === "half-open") {
      const oldest = this.probes[0];
      const permit = (oldest && this.permits.get(oldest.id)) ?? {
        generation: this.generation,
        probe: true,
      };
      this.settle(oldest?.id ?? -1, permit, outcome);
    } else if (this.state === "closed") {
      this.settle(-1, { generation: this.generation, probe: false }, outcome);
    }
  }

  forceOpen(ms: number) {
    const now = this.now();
    this.openUntil = now + Math.min(ms, this.c.maxOpenMs);
    this.go("open");
  }
  forceClose() {
    this.close();
  }
}

const config = fc.record({
  failureThreshold: fc.integer({ min: 1, max: 4 }),
  successThreshold: fc.integer({ min: 1, max: 3 }),
  halfOpenMaxProbes: fc.integer({ min: 1, max: 3 }),
  probeTimeoutMs: fc.integer({ min: 1, max: 500 }),
  openMs: fc.integer({ min: 1, max: 1000 }),
  backoff: fc.constantFrom(1, 1.5, 2, 3),
  maxOpenMs: fc.integer({ min: 1000, max: 5000 }),
});

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.constant({ op: "call" as const }) },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("settle" as const),
      which: fc.nat({ max: 20 }),
      outcome: fc.constantFrom("success", "failure", "release", "retry-after"),
      ms: fc.integer({ min: 1, max: 100_000 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("advance" as const),
      ms: fc.oneof(
        fc.constant(0),
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 1000, max: 20_000 }),
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("forceOpen" as const),
      ms: fc.integer({ min: 0, max: 10_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: "forceClose" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "reset" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "recordSuccess" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "recordFailure" as const }) },
);

function run(c: Config, steps: Step[]) {
  const clock = new ManualClock();
  const breaker: Breaker = createBreaker({ ...c, jitter: 0, clock });
  const model = new Model(c, () => clock.now());
  const issued: Array<{
    permit: Permit;
    model: { generation: number; probe: boolean; settled?: boolean };
    id: number;
  }> = [];
  let nextId = 0;
  for (const s of steps) {
    switch (s.op) {
      case "call": {
        const id = nextId++;
        const permit = breaker.allow();
        const expected = model.allow(id);
        expect(permit !== undefined, "admission").toBe(expected !== undefined);
        if (permit && expected) {
          expect(permit.probe).toBe(expected.probe);
          issued.push({ permit, model: expected, id });
        }
        break;
      }
      case "settle": {
        const target = issued[s.which % Math.max(issued.length, 1)];
        if (target === undefined) break;
        if (s.outcome === "success") target.permit.success();
        else if (s.outcome === "release") target.permit.release();
        else if (s.outcome === "failure") target.permit.failure("error");
        else target.permit.failure("status", clock.now() + s.ms);
        const retryAt = s.outcome === "retry-after" ? clock.now() + s.ms : undefined;
        const outcome = s.outcome === "retry-after" ? "failure" : s.outcome;
        model.settle(target.id, target.model, outcome, retryAt);
        break;
      }
      case "advance":
        clock.advance(s.ms);
        break;
      case "forceOpen":
        breaker.forceOpen(s.ms);
        model.forceOpen(s.ms);
        break;
      case "forceClose":
        breaker.forceClose();
        model.forceClose();
        break;
      case "reset":
        breaker.reset();
        model.forceClose();
        break;
      case "recordSuccess":
        breaker.recordSuccess();
        model.manual("success");
        break;
      case "recordFailure":
        breaker.recordFailure();
        model.manual("failure");
        break;
    }
    expect(breaker.state, `state after ${JSON.stringify(s)}`).toBe(model.read());
    expect(breaker.retryAt, `retryAt after ${JSON.stringify(s)}`).toBe(model.retryAt());
  }
}

describe("the engine agrees with a reference model of the design", () => {
  it(`on ${RUNS} random sequences (seed ${SEED})`, () => {
    fc.assert(
      fc.property(config, fc.array(step, { maxLength: 40 }), (c, steps) => run(c, steps)),
      { seed: SEED, numRuns: RUNS },
    );
  }, 120_000);

  it("snapshot round-trip: a restored engine behaves like the original from then on", () => {
    fc.assert(
      fc.property(
        config,
        fc.array(step, { maxLength: 25 }),
        fc.array(step, { maxLength: 25 }),
        (c, before, after) => {
          const clock = new ManualClock();
          const a = createBreaker({ ...c, jitter: 0, clock });
          const drive = (b: Breaker, steps: Step[], log: string[]) => {
            const permits: Permit[] = [];
            for (const s of steps) {
              if (s.op === "call") {
                const p = b.allow();
                log.push(p ? (p.probe ? "probe" : "ok") : "refused");
                if (p) permits.push(p);
              } else if (s.op === "settle") {
                const p = permits[s.which % Math.max(permits.length, 1)];
                if (s.outcome === "success") p?.success();
                else if (s.outcome === "failure") p?.failure("error");
                else if (s.outcome === "retry-after") p?.failure("status", clock.now() + s.ms);
                else p?.release();
              } else if (s.op === "advance") clock.advance(s.ms);
              else if (s.op === "forceOpen") b.forceOpen(s.ms);
              else if (s.op === "forceClose") b.forceClose();
              else if (s.op === "reset") b.reset();
              else if (s.op === "recordSuccess") b.recordSuccess();
              else b.recordFailure();
              log.push(`${b.state}@${b.retryAt}`);
            }
          };
          drive(a, before, []);
          // Probes in flight belong to the instance that issued them: settle them first, as a
          // page does by going away (their outcome never arrives).
          const state = a.exportState();
          const b = createBreaker({ ...c, jitter: 0, clock });
          b.importState(state);
          const fresh = createBreaker({ ...c, jitter: 0, clock });
          fresh.importState(state);
          const logB: string[] = [];
          const logFresh: string[] = [];
          const start = clock.t;
          drive(b, after, logB);
          clock.t = start;
          drive(fresh, after, logFresh);
          expect(logB).toEqual(logFresh);
          expect(b.exportState()).toEqual(fresh.exportState());
        },
      ),
      { seed: SEED, numRuns: 2_000 },
    );
  });
});

describe("the system clock", () => {
  it("never goes back, never lags the wall clock by more than a second, follows performance.now()", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              kind: fc.constant("tick" as const),
              ms: fc.integer({ min: 0, max: 5000 }),
            }),
            fc.record({
              kind: fc.constant("sleep" as const),
              ms: fc.integer({ min: 0, max: 3_600_000 }),
            }),
            fc.record({
              kind: fc.constant("wall-back" as const),
              ms: fc.integer({ min: 0, max: 3_600_000 }),
            }),
          ),
          { maxLength: 30 },
        ),
        (moves) => {
          let perf = 1_000;
          let wall = performance.timeOrigin + perf;
          const spyPerf = vi.spyOn(performance, "now").mockImplementation(() => perf);
          const spyDate = vi.spyOn(Date, "now").mockImplementation(() => wall);
          try {
            const clock = systemClock();
            let last = clock.now();
            for (const move of moves) {
              if (move.kind === "tick") {
                perf += move.ms;
                wall += move.ms;
              } else if (move.kind === "sleep") wall += move.ms;
              else wall -= move.ms;
              const before = last;
              const now = clock.now();
              expect(now).toBeGreaterThanOrEqual(before); // monotonic
              expect(now).toBeGreaterThanOrEqual(wall); // a sleep is caught up with at once
              if (move.kind === "tick") expect(now - before).toBeGreaterThanOrEqual(move.ms);
              last = now;
            }
          } finally {
            spyPerf.mockRestore();
            spyDate.mockRestore();
          }
        },
      ),
      { seed: SEED, numRuns: 2_000 },
    );
  });
});
