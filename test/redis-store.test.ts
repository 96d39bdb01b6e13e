import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CircuitOpenError, createCbFetch } from "../src/index.js";
import { redisStore } from "../src/redis/index.js";
import { type BreakerRecord, RECORD_VERSION } from "../src/shared/record.js";
import { type Client, socketClient, startRedis, type TestRedis } from "./helpers/redis.js";
import { respond, startServer, type TestServer } from "./helpers/server.js";

// cbfetch/redis in one process, on a real redis-server (unix socket): options, what the store
// sends per change, expiry, a hung Redis, and the pushes an instance takes. The fleet of real
// processes is test/redis-fleet.test.ts; the Lua merge against the TypeScript one,
// test/redis-merge.test.ts.

let redis: TestRedis;
let upstream: TestServer;
let client: Client;
const closing: Array<() => unknown> = [];

beforeAll(async () => {
  [redis, upstream] = await Promise.all([startRedis(), startServer()]);
  client = socketClient(redis.socket);
  client.on("error", () => {});
  await client.connect();
});
afterAll(async () => {
  client.destroy();
  await Promise.all([redis.stop(), upstream.close()]);
});
afterEach(async () => {
  for (const close of closing.splice(0)) await close();
  redis.resume();
  upstream.handle(respond(200));
  await redis.admin.flushAll();
});

function instance(
  options: Parameters<typeof createCbFetch>[0] = {},
  store = redisStore({ client }),
) {
  const cb = createCbFetch({ store, failureThreshold: 2, jitter: 0, ...options });
  const errors: unknown[] = [];
  cb.addEventListener("storeerror", (event) => errors.push((event as { error?: unknown }).error));
  closing.push(() => cb.close());
  return { cb, errors };
}
const outcome = (cb: ReturnType<typeof createCbFetch>) =>
  cb(upstream.origin).then(
    (r) => `status ${r.status}`,
    (e: unknown) => (e instanceof CircuitOpenError ? "refused" : String(e)),
  );
const counts = async () => {
  const all = await redis.commandStats();
  for (const name of ["info", "config|resetstat", "pubsub|numsub", "hgetall", "pttl"])
    delete all[name];
  return all;
};
const subscribers = async () =>
  ((await redis.admin.sendCommand(["PUBSUB", "NUMSUB", "cbfetch:changes"])) as unknown[])[1];

describe("redisStore()", () => {
  it("names what is wrong with its options", () => {
    expect(() => redisStore({ client: {} })).toThrow(/option "client" of redisStore/);
    expect(() => redisStore({ client: null })).toThrow(/got null/);
    expect(() => redisStore({ client, timeoutMs: 0 })).toThrow(/"timeoutMs" .* got 0/);
    expect(() => redisStore({ client, idleMs: Number.NaN })).toThrow(/"idleMs" .* got NaN/);
    expect(() => redisStore({ client, prefix: 5 as never })).toThrow(/"prefix"/);
    expect(() => redisStore(undefined as never)).toThrow(/needs options/);
    // A client's class or factory instead of a client: named, not printed whole.
    const factory = function createClient() {
      return "a long body that must not appear in the message";
    };
    expect(() => redisStore({ client: factory })).toThrow(/got a function$/);
    expect(() => redisStore({ client, timeoutMs: "150" as never })).toThrow(/got "150"/);
    // A timer Node would clamp to 1 ms: every command would time out.
    expect(() => redisStore({ client, timeoutMs: 1e10 })).toThrow(RangeError);
    expect(() => redisStore({ client, pubsub: "no" as never })).toThrow(
      /"pubsub" of redisStore must be true or false, got "no"/,
    );
    expect(() => redisStore({ client, pubSub: false } as never)).toThrow(
      /unknown option "pubSub" in redisStore/,
    );
  });

  it("costs one command per change: a trip and a recovery are three EVALSHA, nothing else", async () => {
    const { cb } = instance({ openMs: 200 });
    expect(await outcome(cb)).toBe("status 200"); // the key's load (and SCRIPT LOAD once)
    await redis.resetStats();
    upstream.handle(respond(503));
    await outcome(cb);
    await outcome(cb);
    await cb.flush();
    expect(cb.state(upstream.origin)).toBe("open");
    upstream.handle(respond(200));
    const retryAt = Number(await redis.admin.hGet(`cbfetch:{${upstream.origin}}`, "t"));
    await new Promise((resolve) => setTimeout(resolve, retryAt - Date.now() + 20));
    expect(await outcome(cb)).toBe("status 200"); // the probe: a lease, then the close
    await cb.flush();
    expect(cb.state(upstream.origin)).toBe("closed");
    // INFO commandstats also counts what the script runs inside Redis (HSET, PUBLISH, …).
    const sent = await counts();
    expect([sent.evalsha, sent.eval, sent["script|load"]]).toEqual([3, undefined, undefined]);
    // The close ended the lease in the same command.
    expect(await redis.admin.exists(`cbfetch:{${upstream.origin}}:lease`)).toBe(0);
  });

  it("lets closed, idle records expire: attacker-chosen origins leave Redis bounded", async () => {
    const store = redisStore({ client, idleMs: 1500, timeoutMs: 5000 });
    const now = Date.now();
    const attacker = (i: number): BreakerRecord => ({
      v: RECORD_VERSION,
      key: `https://attacker-${i}.example`,
      opened: now - 10,
      retryAt: now,
      reopens: 0,
      closed: now,
    });
    await Promise.all(Array.from({ length: 2000 }, (_, i) => store.save(attacker(i))));
    expect(await redis.admin.dbSize()).toBe(2000);
    const ttl = await redis.admin.pTTL("cbfetch:{https://attacker-7.example}");
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1500);
    // An open record is kept until its retryAt, and idleMs after it.
    const key = "https://open.example";
    await store.save({
      v: RECORD_VERSION,
      key,
      opened: now,
      retryAt: now + 60_000,
      reopens: 0,
      closed: 0,
    });
    expect(await redis.admin.pTTL(`cbfetch:{${key}}`)).toBeGreaterThan(60_000);
    for (let attempt = 0; (await redis.admin.dbSize()) > 1 && attempt < 500; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await redis.admin.dbSize()).toBe(1);
  });

  it("a hung Redis: calls are bounded, the instance breaks locally, one storeerror", async () => {
    const { cb, errors } = instance({ openMs: 60_000 });
    expect(await outcome(cb)).toBe("status 200");
    redis.pause();
    upstream.handle(respond(503));
    expect(await outcome(cb)).toBe("status 503");
    expect(await outcome(cb)).toBe("status 503");
    const hits = upstream.hits;
    for (let i = 0; i < 20; i++) expect(await outcome(cb)).toBe("refused");
    expect(upstream.hits).toBe(hits);
    // The write of the open times out: one storeerror (its own timer, or flush's, reports it).
    if (errors.length === 0) {
      await new Promise((resolve) => cb.addEventListener("storeerror", resolve, { once: true }));
    }
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/within 150 ms/);
    redis.resume();
    // The write is retried after its backoff and lands.
    for (let attempt = 0; attempt < 500; attempt++) {
      if ((await redis.admin.exists(`cbfetch:{${upstream.origin}}`)) === 1) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await redis.admin.hGet(`cbfetch:{${upstream.origin}}`, "n")).toBe("0");
    expect(errors).toHaveLength(1);
  });

  it("takes pushes only for keys it uses, and unsubscribes on close()", async () => {
    const io = new Redis({ path: redis.socket });
    closing.push(() => io.disconnect());
    const { cb } = instance({}, redisStore({ client: io }));
    expect(await outcome(cb)).toBe("status 200");
    for (let attempt = 0; (await subscribers()) !== 1 && attempt < 500; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const other = redisStore({ client });
    const now = Date.now();
    const open = (key: string) =>
      ({
        v: RECORD_VERSION,
        key,
        opened: now,
        retryAt: now + 60_000,
        reopens: 0,
        closed: 0,
      }) as const;
    const opened = new Promise((resolve) =>
      cb.addEventListener("statechange", resolve, { once: true }),
    );
    await other.save(open("https://unknown.example"));
    await other.save(open(upstream.origin));
    await opened;
    expect(cb.state(upstream.origin)).toBe("open");
    expect(Object.keys(cb.snapshot())).not.toContain("https://unknown.example");
    await cb.close();
    for (let attempt = 0; (await subscribers()) !== 0 && attempt < 500; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(await subscribers()).toBe(0);
  });

  it("works with any client that has command(args), without pub/sub", async () => {
    const sent: string[] = [];
    const store = redisStore({
      client: {
        command: (args: string[]) => {
          sent.push(args[0] as string);
          return client.sendCommand(args);
        },
      },
    });
    const { cb } = instance({ openMs: 60_000 }, store);
    upstream.handle(respond(503));
    await outcome(cb);
    await outcome(cb);
    await cb.flush();
    expect(sent).toEqual(["SCRIPT", "EVALSHA", "EVALSHA"]); // load, then the open's write
    expect(await redis.admin.hGet(`cbfetch:{${upstream.origin}}`, "n")).toBe("0");
  });

  it("leases one probe, and none after a failed probe until the new retryAt", async () => {
    const [one, two] = [redisStore({ client }), redisStore({ client })];
    const key = "https://leased.example";
    const now = Date.now();
    const record = (opened: number, retryAt: number, reopens: number): BreakerRecord => ({
      v: RECORD_VERSION,
      key,
      opened,
      retryAt,
      reopens,
      closed: 0,
    });
    await one.save(record(now - 1000, now - 1, 0)); // open, and due for a probe
    const lease = await one.acquireProbe(key, 5000);
    expect(lease.granted).toBe(true);
    const refused = await two.acquireProbe(key, 5000);
    expect(refused).toMatchObject({ granted: false, record: record(now - 1000, now - 1, 0) });
    expect((refused as { until: number }).until).toBeGreaterThan(now + 4000);
    // The probe failed: its outcome (a new open) is written, which ends the lease at once.
    await one.save(record(now, now + 60_000, 1));
    expect(await redis.admin.exists(`cbfetch:{${key}}:lease`)).toBe(0);
    expect(await two.acquireProbe(key, 5000)).toEqual({
      granted: false,
      until: now + 60_000,
      record: record(now, now + 60_000, 1),
    });
    // A lease given back without an outcome ends too.
    await redis.admin.del(`cbfetch:{${key}}`);
    const again = await two.acquireProbe(key, 5000);
    expect(again.granted).toBe(true);
    if (again.granted) again.release();
    for (let i = 0; (await redis.admin.exists(`cbfetch:{${key}}:lease`)) === 1 && i < 100; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(await redis.admin.exists(`cbfetch:{${key}}:lease`)).toBe(0);
  });
});
