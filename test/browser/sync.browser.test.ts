import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "./harness.js";
import type { Burst, SyncCallResult, Transition } from "./sync.page.js";

// Issue: two tabs of one origin share their breakers over BroadcastChannel `cbfetch:e2e`, and
// half-open admits one probe across all tabs (a Web Lock). Real Chromium, two pages of one
// browser context, real BroadcastChannel and navigator.locks.
const entry = fileURLToPath(new URL("./sync.page.ts", import.meta.url));
const PATH = "/api/items";
/** DESIGN.md §4: a tab learns of another tab's change within this bound. */
const PROPAGATION_BOUND_MS = 50;
/** Calls per tab in the half-open burst. */
const BURST = 10;
/** The probe's answer takes this long: every call of both bursts is issued meanwhile. */
const PROBE_DELAY_MS = 300;

let h: Harness;
let a: Page;
let b: Page;
beforeAll(async () => {
  h = await startHarness({ entry });
  a = h.page;
  b = await h.newPage();
  await Promise.all([ready(a), ready(b)]);
});
afterAll(() => h?.close());

/** Waits for the page script, then for `cb.ready` (the peers have answered). */
async function ready(page: Page): Promise<void> {
  await page.waitForFunction(() => "cbSync" in window);
  expect(await page.evaluate(() => window.cbSync.ready)).toBe(true);
}
const call = (page: Page, path = PATH): Promise<SyncCallResult> =>
  page.evaluate((p) => window.cbSync.call(p), path);
const state = (page: Page, path = PATH): Promise<string> =>
  page.evaluate((p) => window.cbSync.state(p), path);
const transitions = (page: Page): Promise<Transition[]> =>
  page.evaluate(() => window.cbSync.transitions);
const storeErrors = (page: Page): Promise<string[]> =>
  page.evaluate(() => window.cbSync.storeErrors);
const burst = (page: Page, tab: string, at: number): Promise<Burst> =>
  page.evaluate((o) => window.cbSync.burst(o.path, o.tab, o.count, o.at), {
    path: PATH,
    tab,
    count: BURST,
    at,
  });

/**
 * The page's latest `statechange` to `to`, once it has one. The test only waits here: the
 * timing is read from the page's own stamp, so this polling adds nothing to a latency.
 */
async function lastTransitionTo(page: Page, to: string): Promise<Transition> {
  // A state that never propagates must fail as that, not as a bare Playwright timeout.
  await page
    .waitForFunction((s) => window.cbSync.transitions.some((t) => t.to === s), to, {
      polling: 5,
      timeout: 5_000,
    })
    .catch(() => {
      throw new Error(`${page === a ? "tab A" : "tab B"} saw no statechange to ${to} in 5 s`);
    });
  const found = (await transitions(page)).filter((t) => t.to === to).at(-1);
  if (!found) throw new Error(`no statechange to ${to}`);
  return found;
}

const retryAtOf = (result: SyncCallResult | undefined): number =>
  (result && "retryAt" in result ? result.retryAt : undefined) ?? NaN;

/** Asserts a fail-fast answer of an open circuit whose retryAt is `retryAt` (±1 ms). */
function expectOpen(result: SyncCallResult, retryAt: number): void {
  expect(result).toMatchObject({ error: "CircuitOpenError", state: "open" });
  const got = retryAtOf(result);
  expect(Math.abs(got - retryAt), `retryAt ${got}, expected ${retryAt}`).toBeLessThanOrEqual(1);
}

async function expectNoErrors(): Promise<void> {
  expect(await storeErrors(a)).toEqual([]);
  expect(await storeErrors(b)).toEqual([]);
  expect(h.errors).toEqual([]);
}

describe("cross-tab sync between two tabs (real Chromium)", () => {
  // Set by the first test, used by the second: the second continues the first's story.
  let retryAt = NaN;

  it("a circuit opened in tab A is open in tab B within 50 ms, and B sends nothing", async () => {
    const { upstream } = h;
    upstream.mode = "fail";
    expect(await call(a)).toEqual({ ok: false, status: 503 });
    expect(await call(a)).toEqual({ ok: false, status: 503 });
    expect(upstream.hits).toBe(2);
    expect(await state(a)).toBe("open");

    const openedA = await lastTransitionTo(a, "open");
    const openedB = await lastTransitionTo(b, "open");
    // Both stamps are epoch ms of the same machine clock (timeOrigin differs per page).
    const latency = openedB.at - openedA.at;
    console.log(`cross-tab open propagated in ${latency.toFixed(2)} ms`);
    expect(latency, "B's stamp before A's: the pages' clocks disagree").toBeGreaterThan(-1);
    expect(latency).toBeLessThan(PROPAGATION_BOUND_MS);

    retryAt = openedA.retryAt ?? NaN;
    // openMs 1500, jitter 0: A's open says when it half-opens, and B adopted that time.
    expect(retryAt - openedA.at).toBeCloseTo(1500, -1);
    expect(openedB.retryAt).toBe(retryAt);

    expect(await state(b)).toBe("open");
    const hits = upstream.hits;
    expectOpen(await call(b), retryAt);
    expectOpen(await call(a), retryAt);
    expect(upstream.hits).toBe(hits);
    expect(upstream.paths).toEqual([PATH, PATH]);
    await expectNoErrors();
  });

  it("half-open admits exactly one probe across both tabs; its success closes both", async () => {
    expect(retryAt).not.toBeNaN();
    const { upstream } = h;
    upstream.mode = "ok";
    upstream.delayMs = PROBE_DELAY_MS;
    const hits = upstream.hits;

    // Both bursts start together: each page waits on the breaker's clock until retryAt.
    const [burstA, burstB] = await Promise.all([burst(a, "A", retryAt), burst(b, "B", retryAt)]);
    upstream.delayMs = 0;

    // Exactly one call reached the upstream: the first call of one tab (its breaker's permit).
    expect(upstream.hits - hits).toBe(1);
    const probePath = upstream.paths.at(-1) ?? "";
    expect(probePath).toMatch(/^\/api\/items\?tab=[AB]&n=0$/);
    const [winner, loser] = probePath.includes("tab=A") ? [a, b] : [b, a];
    const [wins, loses] = probePath.includes("tab=A") ? [burstA, burstB] : [burstB, burstA];

    // The probe's tab closed when the answer came; every call of both bursts was issued before.
    const closed = await lastTransitionTo(winner, "closed");
    const spread = Math.abs(burstA.issuedAt - burstB.issuedAt);
    console.log(`half-open bursts issued ${spread.toFixed(2)} ms apart; probe by ${probePath}`);
    expect(burstA.issuedAt).toBeLessThan(closed.at);
    expect(burstB.issuedAt).toBeLessThan(closed.at);

    // So the one probe succeeded and the other 19 calls failed fast in half-open.
    expect(wins.results[0]).toEqual({ ok: true, status: 200 });
    const refused = [...wins.results.slice(1), ...loses.results];
    expect(refused).toHaveLength(2 * BURST - 1);
    for (const result of refused) {
      expect(result).toMatchObject({ error: "CircuitOpenError", state: "half-open" });
      // A real wait, never 0: a caller that waits retryAfterMs does not spin (issue 13).
      expect((result as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
    }

    // The other tab learns of the close from the probe's tab.
    const closedElsewhere = await lastTransitionTo(loser, "closed");
    const closeLatency = closedElsewhere.at - closed.at;
    console.log(`cross-tab close propagated in ${closeLatency.toFixed(2)} ms`);
    expect(await state(a)).toBe("closed");
    expect(await state(b)).toBe("closed");
    // Nobody reopened during the window.
    for (const page of [a, b]) {
      const opens = (await transitions(page)).filter((t) => t.to === "open");
      expect(opens).toHaveLength(1);
    }

    // Closed in both: each tab's next call goes through.
    expect(await call(a)).toEqual({ ok: true, status: 200 });
    expect(await call(b)).toEqual({ ok: true, status: 200 });
    expect(upstream.hits - hits).toBe(3);
    await expectNoErrors();
  });
});
