import { once } from "node:events";
import { createServer, type AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hangUp, startServer, type TestServer } from "./helpers/server.js";

// DESIGN §2: workerd is a server runtime, with no user's network between the Worker and its
// upstream: a Worker whose only upstream refuses connections trips within failureThreshold
// calls. Real workerd (Miniflare 4) in front of real sockets on 127.0.0.1: a port nobody
// listens on, and a server that resets every connection (which counts the attempts).
const root = fileURLToPath(new URL("..", import.meta.url));
let script = "";
let reset: TestServer;
let refused = "";

beforeAll(async () => {
  const result = await build({
    entryPoints: [`${root}/test/workers/trip-worker.ts`],
    bundle: true,
    format: "esm",
    platform: "neutral",
    conditions: ["workerd", "worker", "browser"],
    alias: { "cbfetch/cloudflare": `${root}/src/cloudflare/index.ts` },
    write: false,
    logLevel: "silent",
  });
  script = result.outputFiles[0]?.text ?? "";
  reset = await startServer(hangUp);
  const closed = createServer().listen(0, "127.0.0.1");
  await once(closed, "listening");
  refused = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  closed.close();
  await once(closed, "close");
}, 60_000);
afterAll(() => reset?.close());

describe("a Worker in workerd counts its upstream's network errors", () => {
  it.each([
    ["refuses connections", () => refused, undefined],
    ["resets every connection", () => reset.origin, () => reset],
  ] as const)(
    "an upstream that %s trips within failureThreshold requests",
    async (_, upstream, server) => {
      const mf = new Miniflare({
        modules: true,
        script,
        compatibilityDate: "2026-05-01",
        bindings: { UPSTREAM: upstream() },
      });
      try {
        const before = server?.().hits ?? 0;
        const statuses: number[] = [];
        const circuits: Array<string | null> = [];
        for (let i = 0; i < 6; i++) {
          const response = await mf.dispatchFetch("http://worker.test/items");
          statuses.push(response.status);
          circuits.push(response.headers.get("cbfetch-circuit"));
          await response.text();
        }
        expect(statuses).toEqual([502, 502, 502, 503, 503, 503]);
        expect(circuits.slice(3)).toEqual(["open", "open", "open"]);
        if (server) expect(server().hits - before).toBe(3);
      } finally {
        await mf.dispose();
      }
    },
  );
});
