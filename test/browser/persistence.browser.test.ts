import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "./harness.js";
import type { CallResult } from "./persistence.page.js";

// Issue: a page trips a circuit, reloads, and the first request after the reload is answered
// by cbfetch without reaching the server. Real Chromium, real IndexedDB, real reloads.
const entry = fileURLToPath(new URL("./persistence.page.ts", import.meta.url));
const PATH = "/api/items";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ entry });
});
afterAll(() => h?.close());

/** Waits for the page script, then for `cb.ready` (persisted state loaded). */
async function ready(page: Page): Promise<void> {
  await page.waitForFunction(() => "cbTest" in window);
  expect(await page.evaluate(() => window.cbTest.ready)).toBe(true);
}
const call = (page: Page, path = PATH): Promise<CallResult> =>
  page.evaluate((p) => window.cbTest.call(p), path);
const state = (page: Page, path = PATH): Promise<string> =>
  page.evaluate((p) => window.cbTest.state(p), path);
const storeErrors = (page: Page): Promise<string[]> =>
  page.evaluate(() => window.cbTest.storeErrors);

/** Asserts a fail-fast answer whose retryAt is `retryAt` (±1 ms: epoch ↔ monotonic clock). */
function expectOpen(result: CallResult | undefined, retryAt: number): void {
  expect(result).toMatchObject({ error: "CircuitOpenError", state: "open" });
  const got = retryAtOf(result);
  expect(Math.abs(got - retryAt), `retryAt ${got}, expected ${retryAt}`).toBeLessThanOrEqual(1);
}
const retryAtOf = (result: CallResult | undefined): number =>
  (result && "retryAt" in result ? result.retryAt : undefined) ?? NaN;

describe("an open circuit persists in IndexedDB (real Chromium)", () => {
  // Set by the first test, checked by the second: the second continues the first's story.
  let retryAt = NaN;

  it(
    "trips, reloads, and answers the first call after the reload without a request",
    { timeout: 30_000 },
    async () => {
      const { page, upstream } = h;
      await ready(page);
      upstream.mode = "fail";
      for (let i = 1; i <= 3; i++) {
        expect(await call(page)).toEqual({ ok: false, status: 503 });
        expect(upstream.hits).toBe(i);
      }
      expect(await state(page)).toBe("open");

      const fourth = await call(page);
      expect(fourth).toMatchObject({ error: "CircuitOpenError", state: "open" });
      expect(upstream.hits).toBe(3);
      retryAt = retryAtOf(fourth);
      // openMs 60 s, jitter 0: the circuit opened less than a few seconds ago.
      expect(retryAt - Date.now()).toBeGreaterThan(50_000);

      await page.reload();
      await ready(page);
      const hits = upstream.hits;
      expect(await state(page)).toBe("open");
      expectOpen(await call(page), retryAt);
      expect(upstream.hits).toBe(hits);
      expect(upstream.paths).toEqual([PATH, PATH, PATH]);
      expect(await storeErrors(page)).toEqual([]);
      expect(h.errors).toEqual([]);
    },
  );

  it(
    "a fresh page of the same profile, calling before ready, still fails fast while the upstream is healthy",
    { timeout: 30_000 },
    async () => {
      expect(retryAt).not.toBeNaN();
      const { upstream } = h;
      upstream.mode = "ok";
      const hits = upstream.hits;
      // The page calls while its script starts: the first call must wait for the stored state.
      const page = await h.newPage(`/?call=${encodeURIComponent(PATH)}`);
      try {
        await page.waitForFunction(() => "cbTest" in window);
        expectOpen(await page.evaluate(() => window.cbTest.firstCall), retryAt);
        await ready(page);
        expect(await state(page)).toBe("open");
        expectOpen(await call(page), retryAt);
        expect(upstream.hits).toBe(hits);
        expect(await storeErrors(page)).toEqual([]);
      } finally {
        await page.close();
      }
      expect(h.errors).toEqual([]);
    },
  );
});
