import { execFile } from "node:child_process";
import { once } from "node:events";
import { createServer, type Server } from "node:net";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serverRuntimes } from "../scripts/runtimes.mjs";
import { CircuitOpenError, createCbFetch } from "../src/index.js";
import { hang, hangUp, rejection, startServer, type TestServer } from "./helpers/server.js";

// DESIGN §2: on a server runtime (Node, Bun, Deno, workerd) there is no user's network between
// cbfetch and the origin: a refused connection, a reset or cbfetch's own timeout is the
// origin's failure, so a service whose only upstream stops answering trips within
// `failureThreshold` calls. Real upstreams on 127.0.0.1: a port nobody listens on, a server
// that resets every connection, and one that never answers. (workerd: test/workers.test.ts.)

let reset: TestServer;
let hung: TestServer;
let refusedUrl = "";

/** A port on 127.0.0.1 that was just free: connections to it are refused. */
async function closedPort(): Promise<number> {
  const server: Server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, "close");
  return port;
}

beforeAll(async () => {
  reset = await startServer(hangUp);
  hung = await startServer(hang);
  refusedUrl = `http://127.0.0.1:${await closedPort()}/items`;
});
afterAll(async () => {
  hung.dropConnections();
  await Promise.all([reset.close(), hung.close()]);
});

describe("a server runtime counts network errors", () => {
  it.each([
    ["refuses connections", () => refusedUrl, undefined],
    ["resets every connection", () => reset.origin + "/items", () => reset],
    ["never answers (timeoutMs)", () => hung.origin + "/items", () => hung],
  ] as const)(
    "an only upstream that %s trips within failureThreshold calls",
    async (_, url, server) => {
      const cb = createCbFetch({ failureThreshold: 3, timeoutMs: 300 });
      const before = server?.().hits ?? 0;
      const errors: unknown[] = [];
      for (let i = 0; i < 6; i++) errors.push(await rejection(cb(url())));
      expect(cb.state(url())).toBe("open");
      // Three reached the network and failed as fetch fails; the rest were refused unsent.
      expect(errors.slice(0, 3).every((e) => !(e instanceof CircuitOpenError))).toBe(true);
      expect(errors.slice(3).every((e) => e instanceof CircuitOpenError)).toBe(true);
      if (server) expect(server().hits - before).toBe(3);
      await cb.close();
    },
  );
});

const runtimes = serverRuntimes();

describe.each(["node 22", "bun", "deno"])("the same script in %s", (name) => {
  it("trips on a refused, a reset and a hung upstream", async () => {
    const command = runtimes[name];
    expect(command, `${name} is not installed (scripts/runtimes.mjs)`).toBeDefined();
    const [binary, ...args] = command as string[];
    const upstreams = {
      refused: refusedUrl,
      reset: reset.origin + "/r",
      hung: hung.origin + "/h",
    };
    const { stdout } = await promisify(execFile)(
      binary as string,
      [...args, "test/runtimes/trip.mjs", JSON.stringify(upstreams)],
      { timeout: 60_000 },
    );
    const results = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
    for (const upstream of Object.keys(upstreams)) {
      expect(results[upstream], upstream).toMatchObject({ state: "open" });
      expect(results[upstream].outcomes.slice(3), upstream).toEqual([
        "refused",
        "refused",
        "refused",
      ]);
    }
  }, 60_000);
});
