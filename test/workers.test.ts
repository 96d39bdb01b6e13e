import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { respond, startServer, type TestServer } from "./helpers/server.js";

// The worker-example inside real workerd (Miniflare 4, the engine under wrangler dev and
// vitest-pool-workers) with a SQLite-backed Durable Object persisted to disk, in front of a
// real node:http upstream on 127.0.0.1. Restarting Miniflare on the same directory is a real
// cold start: new process, new isolate, state only from the Durable Object's storage.
const root = fileURLToPath(new URL("..", import.meta.url));
const persist = mkdtempSync(join(tmpdir(), "cbfetch-do-"));
let script = "";
let upstream: TestServer;
let mf: Miniflare | undefined;

beforeAll(async () => {
  upstream = await startServer();
  const result = await build({
    entryPoints: [join(root, "test/workers/worker.ts")],
    bundle: true,
    format: "esm",
    platform: "neutral",
    conditions: ["workerd", "worker", "browser"],
    external: ["cloudflare:workers"],
    alias: {
      "cbfetch/cloudflare": join(root, "src/cloudflare/index.ts"),
      cbfetch: join(root, "src/index.ts"),
    },
    write: false,
    logLevel: "silent",
  });
  script = result.outputFiles[0]?.text ?? "";
}, 60_000);
afterAll(async () => {
  await mf?.dispose();
  await upstream.close();
  rmSync(persist, { recursive: true, force: true });
});
afterEach(() => upstream.handle(respond(200)));

async function start(vars: Record<string, string> = {}) {
  await mf?.dispose();
  mf = new Miniflare({
    modules: true,
    script,
    compatibilityDate: "2026-05-01",
    bindings: {
      UPSTREAM: upstream.origin,
      CB_FAILURE_THRESHOLD: "3",
      CB_OPEN_MS: "60000",
      CB_JITTER: "0",
      ...vars,
    },
    durableObjects: { CIRCUIT_BREAKER: { className: "CircuitBreakerObject", useSQLite: true } },
    durableObjectsPersist: persist,
  });
  await mf.ready;
  return mf;
}
const get = async (path: string) => {
  const response = await (mf as Miniflare).dispatchFetch(`http://worker.test${path}`);
  return {
    status: response.status,
    retryAfter: response.headers.get("retry-after"),
    body: await response.text(),
  };
};
const doCalls = async () => JSON.parse((await get("/__test/do-calls")).body).calls as number;
async function storedRecord(key = upstream.origin): Promise<unknown> {
  const namespace = await (mf as Miniflare).getDurableObjectNamespace("CIRCUIT_BREAKER");
  const stub = namespace.get(namespace.idFromName(key)) as unknown as { load(): Promise<unknown> };
  return stub.load();
}
const settle = () => new Promise((r) => setTimeout(r, 100)); // waitUntil work after a response

describe("cbfetch/cloudflare in workerd", () => {
  it("a warm isolate makes no Durable Object call for closed-state requests", async () => {
    await start();
    expect((await get("/api/items")).status).toBe(200); // cold: loads the key's state once
    await settle();
    const before = await doCalls();
    for (let i = 0; i < 20; i++) expect((await get(`/api/items/${i}`)).status).toBe(200);
    await settle();
    expect(await doCalls()).toBe(before);
    expect(before).toBeLessThanOrEqual(1);
  });

  it("trips on a failing upstream, then answers 503 + Retry-After without calling it", async () => {
    upstream.handle(respond(503));
    for (let i = 0; i < 3; i++) expect((await get("/api/x")).status).toBe(503);
    const hits = upstream.hits;
    const refused = await get("/api/x");
    expect(refused.status).toBe(503);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(59);
    expect(refused.body).toContain("Circuit for");
    expect(upstream.hits).toBe(hits);
    await settle();
    expect(await storedRecord()).toMatchObject({ state: "open", key: upstream.origin });
    const snapshot = JSON.parse((await get("/__breakers")).body);
    expect(snapshot[0]).toMatchObject({ key: upstream.origin, state: "open" });
  });

  it("stays open across a cold start: the first request after it never reaches upstream", async () => {
    upstream.handle(respond(200));
    await start(); // a new workerd process and isolate on the same storage
    const hits = upstream.hits;
    const first = await get("/api/x");
    expect(first.status).toBe(503);
    expect(first.retryAfter).not.toBeNull();
    expect(upstream.hits).toBe(hits);
  });

  it("probes once after the open time, closes, and the Durable Object agrees", async () => {
    await start({ CB_OPEN_MS: "500" });
    upstream.handle(respond(503));
    // The stored circuit has a 60 s retryAt; open it afresh with the short one.
    await get("/hono/api/reset"); // unrelated route, keeps the isolate warm
    const namespace = await (mf as Miniflare).getDurableObjectNamespace("CIRCUIT_BREAKER");
    const stub = namespace.get(namespace.idFromName(upstream.origin)) as unknown as {
      report(r: unknown): Promise<unknown>;
    };
    const current = (await storedRecord()) as { rev: number };
    await stub.report({
      ...(current as object),
      retryAt: Date.now() + 500,
      rev: current.rev + 1,
      writer: "test",
    });
    await start({ CB_OPEN_MS: "500" });
    expect((await get("/api/x")).status).toBe(503); // open, refused
    await new Promise((r) => setTimeout(r, 600));
    upstream.handle((req, res) => setTimeout(() => respond(200)(req, res), 200));
    const hits = upstream.hits;
    const answers = await Promise.all(Array.from({ length: 6 }, () => get("/api/x")));
    expect(upstream.hits).toBe(hits + 1);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 503 && a.retryAfter !== null)).toHaveLength(5);
    await settle();
    expect(await storedRecord()).toMatchObject({ state: "closed" });
    expect((await get("/api/x")).status).toBe(200);
  });

  it("the Hono middleware answers 503 + Retry-After while open", async () => {
    await start();
    upstream.handle(respond(502));
    for (let i = 0; i < 3; i++) expect((await get("/hono/api/h")).status).toBe(502);
    const hits = upstream.hits;
    const refused = await get("/hono/api/h");
    expect(refused.status).toBe(503);
    expect(refused.retryAfter).not.toBeNull();
    expect(upstream.hits).toBe(hits);
  });

  it("ignores garbage in Durable Object storage and in reports", async () => {
    upstream.handle(respond(200));
    const key = upstream.origin;
    const namespace = await (mf as Miniflare).getDurableObjectNamespace("CIRCUIT_BREAKER");
    const stub = namespace.get(namespace.idFromName(key)) as unknown as {
      putRaw(v: unknown): Promise<void>;
      report(v: unknown): Promise<unknown>;
      load(): Promise<unknown>;
    };
    await stub.putRaw({ v: 1, key, state: "ajar", retryAt: "soon" });
    expect(await stub.load()).toBeUndefined();
    for (const garbage of [null, 42, "x", { v: 9 }, { v: 1, key, state: "open" }]) {
      expect(await stub.report(garbage)).toBeUndefined();
    }
    await start(); // cold isolate loads the garbage: ignored, the request goes through
    expect((await get("/api/after-garbage")).status).toBe(200);
  });

  it("two isolates share one probe lease: exactly one request probes the upstream", async () => {
    await mf?.dispose();
    const bindings = {
      UPSTREAM: upstream.origin,
      CB_FAILURE_THRESHOLD: "3",
      CB_OPEN_MS: "60000",
      CB_JITTER: "0",
    };
    const object = { className: "CircuitBreakerObject", useSQLite: true };
    mf = new Miniflare({
      workers: [
        {
          name: "a",
          modules: true,
          script,
          compatibilityDate: "2026-05-01",
          bindings,
          durableObjects: { CIRCUIT_BREAKER: object },
        },
        {
          name: "b",
          modules: true,
          script,
          compatibilityDate: "2026-05-01",
          bindings,
          durableObjects: { CIRCUIT_BREAKER: { ...object, scriptName: "a" } },
        },
      ],
      durableObjectsPersist: persist,
    });
    await mf.ready;
    const b = await mf.getWorker("b");
    const getB = async (path: string) => (await b.fetch(`http://worker.test${path}`)).status;
    // Open the circuit in the object, due in 500 ms; both isolates load it on first use.
    const namespace = await mf.getDurableObjectNamespace("CIRCUIT_BREAKER");
    const stub = namespace.get(namespace.idFromName(upstream.origin)) as unknown as {
      report(r: unknown): Promise<unknown>;
      load(): Promise<{ rev: number } | undefined>;
    };
    const rev = ((await stub.load())?.rev ?? 0) + 1;
    const retryAt = Date.now() + 500;
    await stub.report({
      v: 1,
      key: upstream.origin,
      state: "open",
      retryAt,
      reopenCount: 0,
      consecutiveFailures: 0,
      rev,
      writer: "test",
    });
    expect((await get("/api/lease")).status).toBe(503);
    expect(await getB("/api/lease")).toBe(503);
    await new Promise((r) => setTimeout(r, Math.max(0, retryAt - Date.now()) + 100));
    upstream.handle((req, res) => setTimeout(() => respond(200)(req, res), 300));
    const hits = upstream.hits;
    const statuses = await Promise.all([
      ...Array.from({ length: 3 }, async () => (await get("/api/lease")).status),
      ...Array.from({ length: 3 }, () => getB("/api/lease")),
    ]);
    expect(upstream.hits).toBe(hits + 1);
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    expect(statuses.filter((status) => status === 503)).toHaveLength(5);
  });

  it('scope: "colo" keeps one object per key and location', async () => {
    await start();
    upstream.handle(respond(503));
    for (let i = 0; i < 3; i++) expect((await get("/__test/colo")).status).toBe(503);
    await settle();
    expect(await storedRecord(`TST|${upstream.origin}`)).toMatchObject({
      key: upstream.origin,
      state: "open",
    });
  });

  it("keeps breaking per isolate when the Durable Object is unreachable", async () => {
    await start();
    upstream.handle(respond(500));
    for (let i = 0; i < 3; i++) expect((await get("/__test/broken")).status).toBe(500);
    const hits = upstream.hits;
    expect((await get("/__test/broken")).status).toBe(503);
    expect(upstream.hits).toBe(hits);
  });
});
