import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { CircuitOpenError, createBreaker, createCbFetch } from "../src/index.js";
import { ManualClock } from "./helpers/clock.js";
import { respond, useServer } from "./helpers/server.js";

const server = useServer();

describe("concurrency", () => {
  it.each([1, 3])("10 000 concurrent callers in half-open admit exactly %i", async (max) => {
    const clock = new ManualClock();
    let started = 0;
    const pending: Array<(r: Response) => void> = [];
    const cb = createCbFetch({
      clock,
      failureThreshold: 1,
      openMs: 100,
      halfOpenMaxProbes: max,
      // A fetch whose answers the test releases: 10 000 sockets would measure the OS instead.
      fetch: () => {
        started++;
        return new Promise<Response>((resolve) => pending.push(resolve));
      },
    });
    cb.breaker("https://api.example").forceOpen(100);
    clock.advance(100);
    const calls = Array.from({ length: 10_000 }, () =>
      cb("https://api.example/x").then(
        (r) => r.status,
        (e: unknown) => (e instanceof CircuitOpenError ? "refused" : "error"),
      ),
    );
    await vi.waitFor(() => expect(started).toBe(max));
    for (const resolve of pending) resolve(new Response("ok"));
    const results = await Promise.all(calls);
    expect(results.filter((r) => r === 200)).toHaveLength(max);
    expect(results.filter((r) => r === "refused")).toHaveLength(10_000 - max);
    expect(started).toBe(max);
  });

  it("500 concurrent callers against a real server in half-open send exactly one request", async () => {
    const clock = new ManualClock();
    const cb = createCbFetch({ clock, failureThreshold: 1, openMs: 100 });
    cb.breaker(server.origin).forceOpen(100);
    clock.advance(100);
    server.handle((req, res) => setTimeout(() => respond(200)(req, res), 50));
    const hits = server.hits;
    const results = await Promise.all(
      Array.from({ length: 500 }, () =>
        cb(`${server.origin}/c`).then(
          () => "ok",
          () => "refused",
        ),
      ),
    );
    expect(server.hits - hits).toBe(1);
    expect(results.filter((r) => r === "ok")).toHaveLength(1);
    expect(cb.state(server.origin)).toBe("closed");
  });

  it("no permit leaks after 100 000 mixed calls; the counters add up", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 99 }), { minLength: 100_000, maxLength: 100_000 }),
        (rolls) => {
          const clock = new ManualClock();
          const breaker = createBreaker({
            clock,
            failureThreshold: 3,
            openMs: 50,
            halfOpenMaxProbes: 2,
          });
          let refused = 0;
          let released = 0;
          let settled = 0;
          const inFlight: Array<{ success(): void; failure(): void; release(): void }> = [];
          for (const roll of rolls) {
            if (roll < 45) {
              const permit = breaker.allow();
              if (permit) inFlight.push(permit);
              else refused++;
            } else if (roll < 90 && inFlight.length > 0) {
              const permit = inFlight.splice(roll % inFlight.length, 1)[0];
              if (roll < 70) permit?.success();
              else if (roll < 85) permit?.failure();
              else {
                permit?.release();
                released++;
              }
              settled++;
            } else clock.advance(roll - 80);
          }
          for (const permit of inFlight.splice(0)) {
            permit.success();
            settled++;
          }
          const { successes, failures, rejections, probesInFlight } = breaker.stats;
          expect(probesInFlight).toBe(0);
          expect(rejections).toBe(refused);
          // Every settled call is a success, a failure, a release, or a stale outcome ignored.
          expect(successes + failures).toBeLessThanOrEqual(settled - released);
        },
      ),
      { seed: 7, numRuns: 3 },
    );
  }, 60_000);
});
