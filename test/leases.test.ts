import { describe, expect, it } from "vitest";
import { type BreakerRecord, type BreakerStore, createCbFetch, memoryStore } from "../src/index.js";
import type { ProbeLease } from "../src/shared/store.js";
import { ManualClock } from "./helpers/clock.js";
import { respond, useServer } from "./helpers/server.js";

// Probe leases from a store (as the Durable Object store grants them), with a store of the
// test's own: a memory store whose lease answer the test sets.
const server = useServer();

describe("a refused probe lease", () => {
  it("that brings news of a close lets the call go as a closed-state call, counted once (issue 23.8)", async () => {
    const clock = new ManualClock();
    const records = memoryStore();
    let lease: ProbeLease = { granted: false, until: 0 };
    const store: BreakerStore & { acquireProbe(): Promise<ProbeLease> } = {
      ...records,
      acquireProbe: async () => lease,
    };
    const cb = createCbFetch({ store, clock, failureThreshold: 1, openMs: 1000, jitter: 0 });
    server.handle(respond(503));
    expect((await cb(server.url())).status).toBe(503); // trips
    await cb.flush();
    const open = (await records.load(server.origin)) as BreakerRecord;
    expect(open.opened).toBeGreaterThan(0);

    // Due for a probe; another context probed meanwhile and closed it: the refusal says so.
    clock.advance(1000);
    lease = {
      granted: false,
      until: clock.t + 30_000,
      record: { ...open, closed: clock.t },
    };
    server.handle(respond(200));
    const hits = server.hits;
    expect((await cb(server.url())).status).toBe(200);
    expect(server.hits).toBe(hits + 1);
    expect(cb.state(server.url())).toBe("closed");
    // One call: one success, not a success and an ignored call.
    expect(cb.breaker(server.url()).stats).toMatchObject({
      successes: 1,
      failures: 1,
      ignored: 0,
      rejections: 0,
    });
    await cb.close();
  });
});
