import { createServer, type Server } from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { Redis as Upstash } from "@upstash/redis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { CircuitOpenError, createCbFetch } from "../src/index.js";
import { redisStore } from "../src/redis/index.js";
import { startRedis, type TestRedis } from "./helpers/redis.js";
import { respond, startServer, type TestServer } from "./helpers/server.js";

// cbfetch/redis over `@upstash/redis`, the REST client of serverless and edge functions (no
// TCP, no pub/sub). No Upstash server runs here (TOOLCHAIN.md), so the test puts a small REST
// endpoint in front of the real redis-server: it speaks Upstash's REST protocol as the client
// uses it (POST of a JSON command array with a bearer token, or of several to /pipeline; `{ result }`
// or `{ error }` answers, strings base64-encoded when asked by `Upstash-Encoding: base64`) and forwards each
// command unchanged to redis-server. That endpoint is the only stand-in; the client and the
// server are real.

let redis: TestRedis;
let upstream: TestServer;
let rest: Server;
let restUrl = "";
const TOKEN = "test-token";

/** Upstash's base64 encoding of a reply: every string, also inside arrays. */
function encode(value: unknown): unknown {
  if (typeof value === "string") return Buffer.from(value).toString("base64");
  if (Array.isArray(value)) return value.map(encode);
  return value;
}

beforeAll(async () => {
  [redis, upstream] = await Promise.all([startRedis(), startServer()]);
  rest = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", async () => {
      const answer = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (req.headers.authorization !== `Bearer ${TOKEN}`)
        return answer(401, { error: "Unauthorized" });
      const base64 = req.headers["upstash-encoding"] === "base64";
      const run = async (command: unknown[]) => {
        try {
          const result = await redis.admin.sendCommand(command.map(String));
          return { result: base64 ? encode(result) : result };
        } catch (error) {
          return { error: (error as Error).message };
        }
      };
      const body = JSON.parse(Buffer.concat(chunks).toString()) as unknown[];
      // The client batches commands made in the same tick (auto-pipelining) to /pipeline.
      if (req.url === "/pipeline") {
        return answer(200, await Promise.all((body as unknown[][]).map(run)));
      }
      const one = await run(body);
      answer(one.error === undefined ? 200 : 400, one);
    });
  });
  rest.listen(0, "127.0.0.1");
  await once(rest, "listening");
  restUrl = `http://127.0.0.1:${(rest.address() as AddressInfo).port}`;
});
afterAll(async () => {
  rest.close();
  await Promise.all([redis.stop(), upstream.close()]);
});

/** A cold serverless function: a fresh instance and a fresh REST client. */
function coldFunction() {
  const client = new Upstash({ url: restUrl, token: TOKEN, retry: false });
  return createCbFetch({
    store: redisStore({ client }),
    failureThreshold: 2,
    openMs: 300,
    jitter: 0,
  });
}
const outcome = (cb: ReturnType<typeof createCbFetch>) =>
  cb(upstream.origin).then(
    (r) => `status ${r.status}`,
    (e: unknown) => (e instanceof CircuitOpenError ? "refused" : String(e)),
  );

it("over @upstash/redis: a cold function loads the open, reports its changes, and one probes", async () => {
  const first = coldFunction();
  upstream.handle(respond(503));
  expect([await outcome(first), await outcome(first)]).toEqual(["status 503", "status 503"]);
  await first.flush();
  expect(first.state(upstream.origin)).toBe("open");
  await first.close();
  // A second cold function loads the open on its first call: no request.
  const hits = upstream.hits;
  const second = coldFunction();
  expect(await outcome(second)).toBe("refused");
  expect(upstream.hits).toBe(hits);
  // After retryAt it probes (the lease through the same script), and its success is reported.
  const retryAt = Number(await redis.admin.hGet(`cbfetch:{${upstream.origin}}`, "t"));
  await new Promise((resolve) => setTimeout(resolve, retryAt - Date.now() + 20));
  upstream.handle(respond(200));
  expect(await outcome(second)).toBe("status 200");
  await second.flush();
  const third = coldFunction();
  expect(await outcome(third)).toBe("status 200");
  expect(third.state(upstream.origin)).toBe("closed");
  await Promise.all([second.close(), third.close()]);
  // Redis forgot the script (a restart): EVALSHA's NOSCRIPT falls back to EVAL.
  const client = new Upstash({ url: restUrl, token: TOKEN, retry: false });
  const store = redisStore({ client });
  const errors: unknown[] = [];
  const fourth = createCbFetch({ store, failureThreshold: 1 });
  fourth.addEventListener("storeerror", (event) => errors.push(event));
  expect(await outcome(fourth)).toBe("status 200"); // SCRIPT LOAD, EVALSHA
  await redis.admin.sendCommand(["SCRIPT", "FLUSH"]);
  upstream.handle(respond(503));
  expect(await outcome(fourth)).toBe("status 503"); // trips: EVALSHA → NOSCRIPT → EVAL
  await fourth.flush();
  expect(Number(await redis.admin.hGet(`cbfetch:{${upstream.origin}}`, "o"))).toBeGreaterThan(
    retryAt,
  );
  expect(errors).toEqual([]);
  await fourth.close();
});
