import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "./harness.js";
import type { Burst, SharedCallResult } from "./shared-state.page.js";

// Issue 12: shared state that never loses an open (DESIGN.md §3–§4), in real Chromium with
// real IndexedDB, BroadcastChannel, reloads and network emulation. The page is bundled with
// code splitting, as an app bundler would: cbfetch's store and sync code arrives as a chunk of
// its own, requested when `createCbFetch` runs.
const entry = fileURLToPath(new URL("./shared-state.page.ts", import.meta.url));
const PATH = "/api/items";
const CALL = `call=${encodeURIComponent(PATH)}`;
/** cbfetch's default `loadTimeoutMs`. */
const LOAD_TIMEOUT_MS = 200;
/** The emulated network latency of the slow-network reload (the issue saw 300–600 ms). */
const LATENCY_MS = 400;

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ entry, splitting: true });
});
afterAll(() => h?.close());

/** Opens a tab (a page of the same browser context) and waits for its script. */
async function tab(query: string): Promise<Page> {
  const page = await h.newPage(`/?${query}`);
  await loaded(page);
  return page;
}
async function loaded(page: Page): Promise<void> {
  await page.waitForFunction(() => "cbShared" in window);
}
async function ready(page: Page): Promise<void> {
  expect(await page.evaluate(() => window.cbShared.ready)).toBe(true);
}
const call = (page: Page, path = PATH): Promise<SharedCallResult> =>
  page.evaluate((p) => window.cbShared.call(p), path);
const state = (page: Page, path = PATH): Promise<string> =>
  page.evaluate((p) => window.cbShared.state(p), path);
const flush = async (page: Page): Promise<void> => {
  expect(await page.evaluate(() => window.cbShared.flush())).toBe(true);
};
const firstCall = (page: Page) => page.evaluate(() => window.cbShared.firstCall);
const storeErrors = (page: Page): Promise<string[]> =>
  page.evaluate(() => window.cbShared.storeErrors);
const burst = (page: Page, ops: string, at: number, leadMs: number): Promise<Burst> =>
  page.evaluate((o) => window.cbShared.burst(o.ops, o.at, o.leadMs), { ops, at, leadMs });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function expectNoErrors(...pages: Page[]): Promise<void> {
  for (const page of pages) expect(await storeErrors(page)).toEqual([]);
  expect(h.errors).toEqual([]);
}

describe("shared state never loses an open (real Chromium, issue 12)", () => {
  it(
    "two tabs, one IndexedDB store, no sync: A's flaky traffic does not erase B's open",
    { timeout: 20_000 },
    async () => {
      const { upstream } = h;
      upstream.mode = "ok";
      const query = "db=cbfetch-two-tabs&threshold=2&loadTimeoutMs=10000";
      // B's script makes one successful call as it starts: it has loaded the key.
      const b = await tab(`${query}&${CALL}`);
      const a = await tab(query);
      try {
        expect(await firstCall(b)).toMatchObject({ ok: true, status: 200 });

        // A's flaky-but-healthy traffic: never two failures in a row, so it never trips.
        for (let i = 0; i < 10; i++) {
          upstream.mode = "fail";
          expect(await call(a)).toEqual({ ok: false, status: 503 });
          upstream.mode = "ok";
          expect(await call(a)).toEqual({ ok: true, status: 200 });
        }
        expect(await state(a)).toBe("closed");
        await flush(a);

        // The outage: B trips (two failures in a row) and its open is written.
        upstream.mode = "fail";
        expect(await call(b)).toEqual({ ok: false, status: 503 });
        expect(await call(b)).toEqual({ ok: false, status: 503 });
        expect(await state(b)).toBe("open");
        await flush(b);
        const hits = upstream.hits;
        expect(hits).toBe(1 + 20 + 2);

        // B reloads during the outage: its first call (made as its script runs) fails fast.
        await b.reload();
        await loaded(b);
        const first = await firstCall(b);
        expect(upstream.hits, "B's first call after the reload reached the origin").toBe(hits);
        expect(first).toMatchObject({ error: "CircuitOpenError", state: "open" });
        await ready(b);
        expect(await state(b)).toBe("open");
        await expectNoErrors(a, b);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    },
  );

  it(
    "two tabs with sync: A trips while B records failure, success, failure, success at the same moment; both end open",
    { timeout: 20_000 },
    async () => {
      const { upstream } = h;
      upstream.mode = "ok";
      const query = "sync=cbfetch-race&threshold=3&loadTimeoutMs=10000";
      const a = await tab(query);
      const b = await tab(query);
      try {
        await Promise.all([ready(a), ready(b)]);
        // Each tab has loaded the key (one successful call).
        expect(await call(a)).toEqual({ ok: true, status: 200 });
        expect(await call(b)).toEqual({ ok: true, status: 200 });

        // Both bursts run at the same epoch time, each in one task that started LEAD_MS
        // earlier and busy-waited: a tab's task started before the other tab sent anything,
        // so neither tab can have delivered the other's messages before its own burst.
        const LEAD_MS = 150;
        const at = performance.timeOrigin + performance.now() + 600;
        const [ba, bb] = await Promise.all([
          burst(a, "FFF", at, LEAD_MS),
          burst(b, "FSFS", at, LEAD_MS),
        ]);
        for (const [name, run] of [
          ["A", ba],
          ["B", bb],
        ] as const) {
          const late = `tab ${name}'s burst task started ${(run.taskStart - at).toFixed(1)} ms from the burst time: the bursts were not concurrent`;
          expect(run.taskStart, late).toBeLessThan(at - 20);
          expect(run.ranAt).toBeGreaterThanOrEqual(at);
          expect(run.messagesBefore, `tab ${name} heard the other tab first`).toBe(0);
        }
        // Right after the bursts, before any message: A tripped, B stayed closed.
        expect(ba.stateAfter).toBe("open");
        expect(bb.stateAfter).toBe("closed");

        await sleep(Math.max(0, at + 200 - (performance.timeOrigin + performance.now())));
        expect({ a: await state(a), b: await state(b) }).toEqual({ a: "open", b: "open" });
        const hits = upstream.hits;
        expect(await call(b)).toMatchObject({ error: "CircuitOpenError", state: "open" });
        expect(await call(a)).toMatchObject({ error: "CircuitOpenError", state: "open" });
        expect(upstream.hits).toBe(hits);
        await expectNoErrors(a, b);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    },
  );

  it(
    `slow network (${LATENCY_MS} ms latency): the first call after a reload waits for the store's chunk and fails fast`,
    { timeout: 20_000 },
    async () => {
      const { upstream } = h;
      // The chunk the page loads with import(): cbfetch's store and sync code.
      const chunk = h.scripts.find((s) => /(^|\/)shared-state\.ts$/.test(s.entryPoint ?? ""));
      expect(chunk, JSON.stringify(h.scripts)).toBeDefined();
      expect(chunk?.path).not.toBe("/app.js");

      // The page trips on its first call (threshold 1) and writes the open.
      upstream.mode = "fail";
      const page = await tab(`db=cbfetch-slow-network&threshold=1&${CALL}`);
      const cdp = await h.context.newCDPSession(page);
      try {
        expect(await firstCall(page)).toMatchObject({ ok: false, status: 503 });
        expect(await state(page)).toBe("open");
        await flush(page);

        await cdp.send("Network.enable");
        await cdp.send("Network.emulateNetworkConditions", {
          offline: false,
          latency: LATENCY_MS,
          downloadThroughput: -1,
          uploadThroughput: -1,
        });
        const hits = upstream.hits;
        const since = h.requests.length;

        // Reload during the outage; the page calls as soon as its script runs.
        await page.reload();
        await loaded(page);
        const first = await firstCall(page);
        expect(upstream.hits, "the first call after the reload reached the origin").toBe(hits);
        expect(first).toMatchObject({ error: "CircuitOpenError", state: "open" });

        // The race was real: the emulation survived the reload and slowed the chunk, a request
        // of its own made by the running script, which arrived after loadTimeoutMs had passed.
        const { scriptStart, scripts } = await page.evaluate(() => ({
          scriptStart: window.cbShared.scriptStart,
          scripts: window.cbShared.loaded(),
        }));
        const app = scripts.find((s) => s.path === "/app.js");
        const got = scripts.find((s) => s.path === chunk?.path);
        expect(app, JSON.stringify(scripts)).toBeDefined();
        expect(got, JSON.stringify(scripts)).toBeDefined();
        if (!app || !got) return;
        expect(app.responseEnd - app.startTime).toBeGreaterThanOrEqual(LATENCY_MS - 5);
        expect(got.startTime).toBeGreaterThanOrEqual(scriptStart);
        expect(got.responseEnd - got.startTime).toBeGreaterThanOrEqual(LATENCY_MS - 5);
        expect(got.responseEnd - scriptStart).toBeGreaterThan(LOAD_TIMEOUT_MS);
        expect(first && "settledAt" in first ? first.settledAt : NaN).toBeGreaterThanOrEqual(
          got.responseEnd,
        );
        const served = h.requests.slice(since).map((r) => r.path);
        expect(served.filter((p) => p === chunk?.path)).toHaveLength(1);
        expect(served.indexOf(chunk?.path ?? "")).toBeGreaterThan(served.indexOf("/app.js"));

        await ready(page);
        await expectNoErrors(page);
      } finally {
        await cdp.detach().catch(() => {});
        await page.close();
      }
    },
  );
});
