import type { ServerResponse } from "node:http";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FleetProcess } from "./helpers/fleet.js";
import { startRedis, type TestRedis } from "./helpers/redis.js";
import { respond, startServer, type TestServer } from "./helpers/server.js";

// DESIGN §13 with real parts: a redis-server of the test's own (unix socket), real Node child
// processes running the built package (test/redis/process.mjs, `npm run build` first), each
// with its own Redis client, against real upstreams on 127.0.0.1. Nothing is mocked; waits are
// on events (a process's statechange, a request reaching the upstream), never on the machine's
// speed. Both clients: node-redis (`redis` 6) and ioredis.

let redis: TestRedis;
let upstream: TestServer;
let second: TestServer;
const fleet: FleetProcess[] = [];

beforeAll(async () => {
  [redis, upstream, second] = await Promise.all([startRedis(), startServer(), startServer()]);
});
afterAll(async () => {
  await Promise.all([redis.stop(), upstream.close(), second.close()]);
});
afterEach(async () => {
  await Promise.all(fleet.splice(0).map((process) => process.close()));
  upstream.dropConnections();
  second.dropConnections();
  upstream.handle(respond(200));
  second.handle(respond(200));
  upstream.received.length = 0;
  second.received.length = 0;
  await redis.admin.flushAll();
});

/** Resolves once `check` holds, looking again after each of Redis's answers. */
async function eventually(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 3000; attempt++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`never: ${what}`);
}

/** Requests from `name` that reached `server`. */
const hitsFrom = (server: TestServer, name: string) =>
  server.received.filter((r) => r.headers["x-process"] === name).length;

/** An upstream that holds every request until `answer()` (a probe in flight). */
function holding(server: TestServer) {
  const held: ServerResponse[] = [];
  server.handle((_req, res) => held.push(res));
  return {
    held,
    answer(status: number) {
      server.handle(respond(status));
      for (const res of held.splice(0)) respond(status)(_unused, res);
    },
  };
}
const _unused = undefined as never;

describe.each(["redis", "ioredis"])(
  "a fleet of Node processes sharing Redis (%s)",
  { timeout: 60_000 },
  (client) => {
    /** Starts processes and waits until each is subscribed to the changes channel. */
    async function start(names: string[], options: Record<string, unknown> = {}) {
      const config = {
        socket: redis.socket,
        client,
        options: { failureThreshold: 3, jitter: 0, ...options },
      };
      const started = names.map((name) => new FleetProcess(name, config));
      fleet.push(...started);
      await Promise.all(started.map((p) => p.ready));
      const alive = fleet.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
      await eventually(async () => (await subscribers()) === alive.length, "all subscribed");
      return started;
    }
    const subscribers = async () =>
      ((await redis.admin.sendCommand(["PUBSUB", "NUMSUB", "cbfetch:changes"])) as unknown[])[1];
    /** Has each process call the upstream once, so it knows the key. */
    async function warm(processes: FleetProcess[]) {
      for (const p of processes) expect(await p.call(upstream.origin)).toEqual(["status 200"]);
    }
    const stored = (key: string) => redis.admin.hGetAll(`cbfetch:{${key}}`);

    it("one process trips: the others refuse with no request, a fresh one too", async () => {
      const [a, b, c] = await start(["a", "b", "c"], { openMs: 60_000 });
      await warm([a!, b!]);
      upstream.handle(respond(503));
      const bOpen = b!.until(upstream.origin, "open");
      expect(await a!.call(upstream.origin, 3)).toEqual(["status 503", "status 503", "status 503"]);
      await bOpen;
      const hits = upstream.hits;
      expect(await b!.call(upstream.origin, 5)).toEqual(Array(5).fill("refused"));
      // c never called the origin: its first call loads the record, and is refused.
      expect(await c!.call(upstream.origin)).toEqual(["refused"]);
      expect(upstream.hits).toBe(hits);
      expect(Number((await stored(upstream.origin)).o)).toBeGreaterThan(0);
    });

    it("half-open: exactly one probe across four processes, and all close on its success", async () => {
      const fleet4 = await start(["a", "b", "c", "d"], { openMs: 500, probeTimeoutMs: 10_000 });
      await warm(fleet4);
      upstream.handle(respond(503));
      const opened = fleet4.map((p) => p.until(upstream.origin, "open"));
      await fleet4[0]!.call(upstream.origin, 3);
      await Promise.all(opened);
      const retryAt = Number((await stored(upstream.origin)).t);
      const gate = holding(upstream);
      await new Promise((resolve) => setTimeout(resolve, retryAt - Date.now() + 20));
      const hits = upstream.hits;
      const settled: string[][] = [];
      const batches = fleet4.map((p) => p.call(upstream.origin, 3, 3).then((o) => settled.push(o)));
      // Three processes are refused at once; the fourth's probe waits at the upstream.
      await eventually(() => settled.length === 3 && gate.held.length === 1, "one probe held");
      expect(settled.flat()).toEqual(Array(9).fill("refused"));
      const closed = fleet4.map((p) => p.until(upstream.origin, "closed"));
      gate.answer(200);
      await Promise.all(batches);
      await Promise.all(closed);
      expect(upstream.hits - hits).toBe(1);
      expect(settled[3]!.sort()).toEqual(["refused", "refused", "status 200"]);
      expect(await fleet4[1]!.call(upstream.origin)).toEqual(["status 200"]);
    });

    it("kill -9 of the prober: another process probes once its lease expires", async () => {
      const [a, b] = await start(["a", "b"], { openMs: 300, probeTimeoutMs: 1000 });
      await warm([a!, b!]);
      upstream.handle(respond(503));
      const bOpen = b!.until(upstream.origin, "open");
      await a!.call(upstream.origin, 3);
      await bOpen;
      const retryAt = Number((await stored(upstream.origin)).t);
      const gate = holding(upstream);
      await new Promise((resolve) => setTimeout(resolve, retryAt - Date.now() + 20));
      void a!.call(upstream.origin);
      await eventually(() => gate.held.length === 1, "a's probe reached the upstream");
      expect(hitsFrom(upstream, "a")).toBe(5); // warm-up, three failures, the probe
      await a!.kill();
      // a's lease is still there: b is refused without a request.
      expect(await b!.call(upstream.origin)).toEqual(["refused"]);
      const lease = `cbfetch:{${upstream.origin}}:lease`;
      await eventually(async () => (await redis.admin.exists(lease)) === 0, "the lease expired");
      upstream.handle(respond(200));
      await eventually(
        async () => (await b!.call(upstream.origin))[0] === "status 200",
        "b probes",
      );
      expect(hitsFrom(upstream, "b")).toBe(2); // its warm-up call and its probe
      gate.held.splice(0);
    });

    it("Redis killed and restarted mid-run: local breaking, one storeerror, then convergence", async () => {
      const [a, b] = await start(["a", "b"], { openMs: 60_000 });
      await warm([a!, b!]);
      upstream.handle(respond(503));
      const bOpen = b!.until(upstream.origin, "open");
      await a!.call(upstream.origin, 3);
      await bOpen;
      await redis.kill();
      // With Redis down, a trips another origin by itself, and refuses it locally.
      second.handle(respond(503));
      expect(await a!.call(second.origin, 3)).toEqual(Array(3).fill("status 503"));
      expect(await a!.call(second.origin, 20)).toEqual(Array(20).fill("refused"));
      expect(await a!.call(upstream.origin, 20)).toEqual(Array(20).fill("refused"));
      expect(hitsFrom(second, "a")).toBe(3);
      const errors = (await a!.ask("state", { url: second.origin })).storeErrors;
      expect(errors, JSON.stringify((await a!.ask("state")).errorLog)).toBe(1);
      await redis.start(); // empty: no persistence
      // a writes its change again (its backoff), and both write back the open Redis lost.
      await eventually(async () => (await stored(second.origin)).o !== undefined, "second");
      await eventually(async () => (await stored(upstream.origin)).o !== undefined, "first");
      const [c] = await start(["c"], { openMs: 60_000 });
      expect(await c!.call(upstream.origin)).toEqual(["refused"]);
      expect(await c!.call(second.origin)).toEqual(["refused"]);
      expect(hitsFrom(upstream, "c") + hitsFrom(second, "c")).toBe(0);
      const after = await a!.ask("state", { url: second.origin });
      expect(after.storeErrors, JSON.stringify(after.errorLog)).toBe(1);
    });

    it("after FLUSHALL, the process that holds an open writes it back; none appears from nowhere", async () => {
      const [a] = await start(["a"], { openMs: 60_000 });
      await warm([a!]);
      upstream.handle(respond(503));
      await a!.call(upstream.origin, 3);
      await redis.admin.flushAll();
      const [c] = await start(["c"], { openMs: 60_000 });
      const cOpen = c!.until(upstream.origin, "open");
      // c's first call finds nothing stored; a hears of the miss and writes its open back.
      await c!.call(upstream.origin);
      await cOpen;
      expect(await c!.call(upstream.origin, 3)).toEqual(Array(3).fill("refused"));
      expect(Number((await stored(upstream.origin)).o)).toBeGreaterThan(0);
      // A key nobody holds open stays closed.
      expect(await c!.call(second.origin)).toEqual(["status 200"]);
      expect(await stored(second.origin)).toEqual({});
    });

    it("10 000 healthy calls send no Redis command", async () => {
      const [a] = await start(["a"]);
      await warm([a!]);
      await redis.resetStats();
      const outcomes = await a!.call(upstream.origin, 10_000, 50);
      expect(outcomes.filter((o) => o !== "status 200")).toEqual([]);
      const counts = await redis.commandStats();
      delete counts.info; // the test's own: INFO and CONFIG RESETSTAT
      delete counts["config|resetstat"];
      expect(counts).toEqual({});
    });
  },
);
