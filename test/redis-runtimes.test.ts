import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serverRuntimes } from "../scripts/runtimes.mjs";
import { createCbFetch } from "../src/index.js";
import { redisStore } from "../src/redis/index.js";
import { socketClient, startRedis, type TestRedis } from "./helpers/redis.js";
import { respond, startServer, type TestServer } from "./helpers/server.js";

// DESIGN §13's fleets are Node, Bun or Deno processes: the same script (the built package with
// node-redis, test/runtimes/redis-trip.mjs) in Node 22, Bun and Deno, against a real
// redis-server and real upstreams on 127.0.0.1. An origin another process opened is refused on
// the script's first call (loaded from Redis), and the script's own trip lands in Redis.

let redis: TestRedis;
let open: TestServer;
let down: TestServer;

beforeAll(async () => {
  [redis, open, down] = await Promise.all([startRedis(), startServer(), startServer()]);
  open.handle(respond(503));
  down.handle(respond(503));
  const client = socketClient(redis.socket);
  await client.connect();
  const cb = createCbFetch({ store: redisStore({ client }), failureThreshold: 2, openMs: 300_000 });
  await cb(open.origin);
  await cb(open.origin);
  await cb.flush();
  await cb.close();
  client.destroy();
});
afterAll(async () => {
  await Promise.all([redis.stop(), open.close(), down.close()]);
});

const runtimes = serverRuntimes();

describe.each(["node 22", "bun", "deno"])("cbfetch/redis in %s", (name) => {
  it("loads an open from Redis and writes its own trip there", async () => {
    const command = runtimes[name];
    expect(command, `${name} is not installed (scripts/runtimes.mjs)`).toBeDefined();
    const [binary, ...args] = command as string[];
    await redis.admin.del(`cbfetch:{${down.origin}}`);
    const hits = open.hits;
    const config = { socket: redis.socket, open: open.origin, down: down.origin };
    const { stdout } = await promisify(execFile)(
      binary as string,
      [...args, "test/runtimes/redis-trip.mjs", JSON.stringify(config)],
      { timeout: 60_000 },
    );
    const result = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
    expect(result).toEqual({
      first: "refused",
      outcomes: ["status 503", "status 503", "refused"],
      state: "open",
    });
    expect(open.hits).toBe(hits);
    expect(Number(await redis.admin.hGet(`cbfetch:{${down.origin}}`, "o"))).toBeGreaterThan(0);
  }, 60_000);
});
