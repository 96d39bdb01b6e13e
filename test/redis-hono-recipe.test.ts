import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startRedis, type TestRedis } from "./helpers/redis.js";
import { recipe, root } from "./helpers/recipe.js";
import { respond, startServer, type TestServer } from "./helpers/server.js";

// The README's "Server fleets (Redis)" recipe, run as written: its server.mjs (marked
// `<!-- recipe: redis-hono server.mjs -->`) is written into a folder inside the repository (so
// `cbfetch/hono` and `cbfetch/redis` resolve to the built package, `npm run build` first) and
// started as three real Node processes on @hono/node-server, each with its own node-redis
// client, against a real redis-server on a TCP port of 127.0.0.1 and a real upstream.

const work = join(root, ".artifacts", "redis-hono-recipe");
let redis: TestRedis;
let redisPort = 0;
let upstream: TestServer;
const servers: ChildProcess[] = [];

async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, "close");
  return port;
}

/** Starts `node server.mjs` on a free port; resolves with its origin once it answers. */
async function serve(redisUrl: string): Promise<string> {
  const port = await freePort();
  const env = {
    ...process.env,
    PORT: String(port),
    REDIS_URL: redisUrl,
    UPSTREAM: upstream.origin,
  };
  const child = spawn(process.execPath, ["server.mjs"], {
    cwd: work,
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let errors = "";
  child.stderr?.on("data", (chunk: Buffer) => (errors += String(chunk)));
  servers.push(child);
  const origin = `http://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 500; attempt++) {
    if (child.exitCode !== null)
      throw new Error(`server.mjs exited with ${child.exitCode}: ${errors}`);
    const up = await fetch(`${origin}/health`).then(
      () => true,
      () => false,
    );
    if (up) return origin;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error("server.mjs never answered");
}

beforeAll(async () => {
  redisPort = await freePort();
  [redis, upstream] = await Promise.all([startRedis(redisPort), startServer()]);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const files = recipe("redis-hono");
  expect(Object.keys(files)).toEqual(["server.mjs"]);
  for (const [file, contents] of Object.entries(files)) writeFileSync(join(work, file), contents);
});
afterAll(async () => {
  await Promise.all(
    servers.map((child) => {
      if (child.exitCode !== null) return undefined;
      child.kill();
      return once(child, "exit");
    }),
  );
  await Promise.all([redis.stop(), upstream.close()]);
  rmSync(work, { recursive: true, force: true });
});

it(
  "the README's Hono-on-Node recipe shares one breaker across three processes",
  { timeout: 60_000 },
  async () => {
    const url = `redis://127.0.0.1:${redisPort}`;
    const [a, b, c] = await Promise.all([serve(url), serve(url), serve(url)]);
    const items = await fetch(`${a}/items`);
    expect(items.status).toBe(200);
    expect(await items.text()).toBe("status 200");
    // The upstream fails: process a trips after failureThreshold (5) failures.
    upstream.handle(respond(503));
    for (let i = 0; i < 5; i++) expect((await fetch(`${a}/items`)).status).toBe(503);
    const hits = upstream.hits;
    const refused = await fetch(`${a}/items`);
    expect([refused.status, refused.headers.get("cbfetch-circuit")]).toEqual([503, "open"]);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    // b and c never called it: each loads the shared record on its first call and refuses.
    for (const other of [b, c]) {
      const answer = await fetch(`${other}/items`);
      expect([answer.status, answer.headers.get("cbfetch-circuit")]).toEqual([503, "open"]);
    }
    expect(upstream.hits).toBe(hits);
  },
);
