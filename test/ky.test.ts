import ky, { HTTPError } from "ky";
import { describe, expect, it } from "vitest";
import { createKy } from "../src/ky/index.js";
import { CircuitOpenError, createCbFetch, ThrottledError } from "../src/index.js";
import { ManualClock } from "./helpers/clock.js";
import { respond, useServer } from "./helpers/server.js";

// ky 2 through cbfetch against a real server on 127.0.0.1.
const server = useServer();
const url = (path = "/") => server.origin + path;
const fastRetries = { limit: 5, delay: () => 5 };

describe("cbfetch/ky", () => {
  it("sends every attempt through the breaker; an open circuit ends ky's retries at once", async () => {
    const cb = createCbFetch({ failureThreshold: 3, openMs: 60_000 });
    const api = createKy(cb, { retry: fastRetries });
    server.handle(respond(503));
    const hits = server.hits;
    const error = await api.get(url("/items")).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CircuitOpenError); // not an HTTPError, not wrapped
    expect(server.hits - hits).toBe(3); // 3 attempts tripped it; the 4th never left
    expect(cb.state(url())).toBe("open");
  });

  it("never retries into an open circuit, even when the caller's shouldRetry says retry", async () => {
    const cb = createCbFetch({ failureThreshold: 1, openMs: 60_000 });
    let asked = 0;
    const api = createKy(cb, {
      retry: {
        ...fastRetries,
        shouldRetry: () => {
          asked++;
          return true;
        },
      },
    });
    server.handle(respond(503));
    const hits = server.hits;
    await expect(api.get(url("/always"))).rejects.toBeInstanceOf(CircuitOpenError);
    expect(server.hits - hits).toBe(1);
    expect(asked).toBe(1); // asked about the 503 only; the CircuitOpenError ended the loop
  });

  it("a throttled attempt ends ky's retries too, without asking the caller's shouldRetry", async () => {
    // Refused whenever p > 0: p is 1/2 after the first 503 (minRequests 1, draws of 0).
    const cb = createCbFetch({
      throttle: { minRequests: 1 },
      failureThreshold: 1000,
      random: () => 0,
      clock: new ManualClock(),
    });
    let asked = 0;
    const api = createKy(cb, {
      retry: {
        ...fastRetries,
        shouldRetry: () => {
          asked++;
          return true;
        },
      },
    });
    server.handle(respond(503));
    const hits = server.hits;
    await expect(api.get(url("/throttled"))).rejects.toBeInstanceOf(ThrottledError);
    expect(server.hits - hits).toBe(1);
    expect(asked).toBe(1); // about the 503 only
  });

  it("agrees with cbfetch on Retry-After: ky's retry after it is the probe", async () => {
    const cb = createCbFetch({ failureThreshold: 5, jitter: 0 });
    const api = createKy(cb, { retry: { limit: 2 } });
    let first = true;
    server.handle((req, res) => {
      if (first) {
        first = false;
        respond(503, "busy", { "retry-after": "1" })(req, res);
      } else respond(200, '{"ok":true}', { "content-type": "application/json" })(req, res);
    });
    const hits = server.hits;
    const started = Date.now();
    expect(await api.get(url("/retry")).json()).toEqual({ ok: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(server.hits - hits).toBe(2);
    expect(cb.state(url())).toBe("closed"); // the retry was the probe, and it closed
  });

  it("keeps ky's own errors and types: a 404 is an HTTPError and no failure", async () => {
    const cb = createCbFetch({ failureThreshold: 1 });
    const api = createKy(cb, { prefix: server.origin });
    server.handle(respond(404, "nope"));
    const error = await api.get("missing").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(HTTPError);
    expect((error as HTTPError).response.status).toBe(404);
    expect(cb.state(url())).toBe("closed");
  });

  it("still asks the caller's shouldRetry for anything else", async () => {
    const cb = createCbFetch({ failureThreshold: 10 });
    const seen: unknown[] = [];
    const api = createKy(cb, {
      retry: {
        ...fastRetries,
        shouldRetry: ({ error }) => {
          seen.push(error);
          return false;
        },
      },
    });
    server.handle(respond(500));
    await api.get(url()).catch(() => {});
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(HTTPError);
    expect(() => createKy("nope" as never)).toThrow(/needs a fetch function/);
  });
});

describe("cbfetch/ky: ky's retries draw on cbfetch's retry budget", () => {
  /** Requests the server got during `run`. */
  async function hitsDuring(run: () => Promise<unknown>): Promise<number> {
    const before = server.hits;
    await run();
    return server.hits - before;
  }
  /** `n` ky requests one after another, their failures caught. */
  const requests = (n: number, get: () => Promise<unknown>) => async () => {
    for (let i = 0; i < n; i++) await get().catch(() => {});
  };
  const noTrip = { failureThreshold: 1e9 };
  const limit2 = { limit: 2, delay: () => 1 };

  it("100 ky requests with retry 2 against a dead origin make at most 123 attempts (default budget)", async () => {
    server.handle(respond(503));
    const cb = createCbFetch(noTrip); // no `retry` option: the default budget
    const api = createKy(cb, { retry: limit2 });
    const hits = await hitsDuring(requests(100, () => api.get(url("/dead"))));
    expect(hits).toBe(123); // 100 first attempts + 3 + 20 % of 100 retries
    expect(cb.snapshot()).toEqual([
      expect.objectContaining({ key: server.origin, retries: 23, failures: 123 }),
    ]);
    // Plain ky, same options, on the raw fetch: 300.
    const plain = ky.create({ retry: limit2 });
    expect(await hitsDuring(requests(100, () => plain.get(url("/dead"))))).toBe(300);
  });

  it("shares the budget with cbfetch's own retries, counting each ky request once", async () => {
    server.handle(respond(503));
    const cb = createCbFetch({ ...noTrip, random: () => 0, retry: { limit: 2, delayMs: 1 } });
    // cbfetch's own retries spend the budget: 10 requests, 3 + 2 retries.
    expect(await hitsDuring(requests(10, () => cb(url("/own"))))).toBe(15);
    // Nothing left for ky's (nor for cbfetch's under it): each ky request is one attempt.
    const api = createKy(cb, { retry: limit2 });
    expect(await hitsDuring(requests(4, () => api.get(url("/ky"))))).toBe(4); // 5 + 20 % of 14 < 6
    expect(cb.snapshot()[0]?.retries).toBe(5);
    // Both layers against a dead origin: still 3 + 20 % of the logical requests in all (had
    // cbfetch's loop counted ky's attempts as requests too, there would be more).
    const fresh = createCbFetch({ ...noTrip, random: () => 0, retry: { limit: 2, delayMs: 1 } });
    const layered = createKy(fresh, { retry: limit2 });
    expect(await hitsDuring(requests(100, () => layered.get(url("/both"))))).toBe(123);
  });

  it("follows the instance's retry.budget: off, or none at all", async () => {
    server.handle(respond(503));
    const unbudgeted = createCbFetch({ ...noTrip, retry: { limit: 0, budget: false } });
    const free = createKy(unbudgeted, { retry: limit2 });
    expect(await hitsDuring(requests(10, () => free.get(url())))).toBe(30);
    expect(unbudgeted.snapshot()[0]?.retries).toBe(20);

    const none = { limit: 0, budget: { minRetries: 0, ratio: 0 } };
    const strict = createKy(createCbFetch({ ...noTrip, retry: none }), { retry: limit2 });
    expect(await hitsDuring(requests(10, () => strict.get(url())))).toBe(10);
  });

  it("past the budget, returns ky's failure at once, without ky's wait", async () => {
    server.handle(respond(503));
    const cb = createCbFetch({
      ...noTrip,
      retry: { limit: 0, budget: { minRetries: 0, ratio: 0 } },
    });
    const api = createKy(cb, { retry: { limit: 2, delay: () => 5000 } });
    const started = performance.now();
    const error = await api.get(url()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(performance.now() - started).toBeLessThan(1000);
    expect(error).toBeInstanceOf(HTTPError); // as when ky's limit is spent
    expect((error as HTTPError).response.status).toBe(503);
  });

  it("keeps the caller's own ky options: hooks, shouldRetry, retry limit", async () => {
    server.handle(respond(503));
    const cb = createCbFetch({
      ...noTrip,
      retry: { limit: 0, budget: { minRetries: 2, ratio: 0 } },
    });
    const seen: string[] = [];
    const api = createKy(cb, {
      retry: { limit: 3, delay: () => 1, shouldRetry: () => (seen.push("shouldRetry"), true) },
      hooks: {
        beforeRequest: [() => void seen.push("beforeRequest")],
        beforeRetry: [({ retryCount }) => void seen.push(`beforeRetry ${retryCount}`)],
        beforeError: [({ error }) => (seen.push(`beforeError ${error.name}`), error)],
      },
    });
    // shouldRetry says yes 3 times; the budget (2 retries) stops the third, at once.
    expect(await hitsDuring(() => api.get(url()).catch(() => {}))).toBe(3);
    expect(seen).toEqual([
      "beforeRequest",
      "shouldRetry",
      "beforeRetry 1",
      "shouldRetry",
      "beforeRetry 2",
      "shouldRetry",
      "beforeError HTTPError",
    ]);
    // A success needs no retry, and ky's own limit still applies under the budget.
    server.handle(respond(200, "fine"));
    expect(await api.get(url()).text()).toBe("fine");
  });

  it("with a plain fetch, ky's retries get a budget of their own (per origin)", async () => {
    server.handle(respond(503));
    const plainFetch: typeof fetch = (input, init) => fetch(input, init);
    const api = createKy(plainFetch, { retry: limit2 });
    expect(await hitsDuring(requests(100, () => api.get(url())))).toBe(123);
  });
});
