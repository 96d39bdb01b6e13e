import { fileURLToPath } from "node:url";
import type { CDPSession, Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Api, startApi } from "./api-servers.js";
import { type Harness, startHarness } from "./harness.js";
import type { AppOptions, NetCallResult } from "./network.page.js";

// Issue 15, DESIGN §2 "Is it me or them?", in real Chromium: the page is on the harness origin
// and calls three API origins (local servers on other ports, with CORS). The browser's own
// network failures come from CDP: `Fetch.failRequest` with `InternetDisconnected` (a dead
// uplink: `navigator.onLine` stays true) and `Network.emulateNetworkConditions` (offline).
// The page is bundled with code splitting, as a site's bundler would: code loaded on demand
// would show up as requests for chunks.
const entry = fileURLToPath(new URL("./network.page.ts", import.meta.url));

let h: Harness;
let page: Page;
let cdp: CDPSession;
let apis: Api[];
let a: Api;
let b: Api;
let c: Api;
/** Requests the browser failed as a dead uplink would (method and URL), in order. */
let paused: Array<{ method: string; url: string }> = [];

beforeAll(async () => {
  apis = await Promise.all([startApi(), startApi(), startApi()]);
  [a, b, c] = apis as [Api, Api, Api];
  h = await startHarness({ entry, splitting: true });
  page = h.page;
  await page.waitForFunction(() => "cbNet" in window);
  cdp = await h.context.newCDPSession(page);
  // Every request the interception pauses is failed as a dead uplink would fail it.
  cdp.on("Fetch.requestPaused", ({ requestId, request }) => {
    paused.push({ method: request.method, url: request.url });
    cdp
      .send("Fetch.failRequest", { requestId, errorReason: "InternetDisconnected" })
      .catch(() => {});
  });
});
afterAll(async () => {
  await h?.close();
  await Promise.all(apis?.map((api) => api.close()) ?? []);
});
beforeEach(async () => {
  for (const api of apis) {
    api.mode = "ok";
    api.cors = { allow: true, expose: true };
    api.hits = 0;
  }
  h.upstream.mode = "ok";
  paused = [];
  await reconnect();
});

/**
 * From now on, the browser fails every request to `cut` (APIs, or the page's own origin) with
 * `net::ERR_INTERNET_DISCONNECTED`.
 */
async function disconnect(cut: Array<{ origin: string }>): Promise<void> {
  const patterns = cut.map((api) => ({ urlPattern: `${api.origin}/*` }));
  await cdp.send("Fetch.enable", { patterns });
}
async function reconnect(): Promise<void> {
  await cdp.send("Fetch.disable");
}
/** `Network.emulateNetworkConditions`: Chromium fires `offline` / `online` at the page. */
async function setOffline(offline: boolean): Promise<void> {
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", {
    offline,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: -1,
  });
}

const create = (id: string, options: AppOptions = {}) =>
  page.evaluate(({ id, options }) => window.cbNet.create(id, options), { id, options });
const call = (id: string, api: Api): Promise<NetCallResult> =>
  page.evaluate(({ id, url }) => window.cbNet.call(id, url), { id, url: api.url });
const state = (id: string, api: Api): Promise<string> =>
  page.evaluate(({ id, url }) => window.cbNet.state(id, url), { id, url: api.url });
const states = (id: string) => Promise.all(apis.map((api) => state(id, api)));
const hitsOf = () => apis.map((api) => api.hits);
/** The checks of the page's own origin (`HEAD /`) that reached it since `since`. */
const checksSince = (since: number) =>
  h.requests.slice(since).filter((r) => r.method === "HEAD" && r.path === "/").length;

const NETWORK_ERROR = { error: "TypeError" };
const OPEN = { error: "CircuitOpenError", state: "open" };
/** For circuits that must open or not: a long open time, no jitter. */
const BREAKER = { failureThreshold: 3, openMs: 60_000, jitter: 0 };

/**
 * The page's console errors, but the browser's own lines about the failures the tests cause:
 * a request the browser failed, and answers without `Access-Control-Allow-Origin`.
 */
const unexpectedErrors = () =>
  h.errors.filter(
    (line) =>
      !/Failed to load resource: net::ERR_(INTERNET_DISCONNECTED|EMPTY_RESPONSE|FAILED)/.test(
        line,
      ) && !/has been blocked by CORS policy/.test(line),
  );

async function expectNoErrors(): Promise<void> {
  expect(await page.evaluate(() => window.cbNet.storeErrors)).toEqual([]);
  expect(unexpectedErrors()).toEqual([]);
}

describe("is it me or them? (real Chromium, three API origins)", () => {
  it("a dead uplink with navigator.onLine true opens nothing, stores and sends no open, requests no code and checks at most once a round; once back, the first call to each origin reaches it", async () => {
    const id = "uplink";
    await create(id, { dbName: "cbfetch-uplink", sync: true, failureThreshold: 3 });
    // The app at work: every origin answers.
    for (const api of apis) expect(await call(id, api)).toEqual({ ok: true, status: 200 });

    const hits = hitsOf();
    // Every origin is cut, the page's own included.
    await disconnect([...apis, h]);
    const rounds = 5;
    for (let i = 0; i < rounds; i++) {
      for (const api of apis) expect(await call(id, api)).toMatchObject(NETWORK_ERROR);
    }
    expect(hitsOf(), "the browser failed them before they left").toEqual(hits);
    // What a failure needs was in memory before it: no code was asked for over the dead network.
    expect(paused.filter((r) => r.url.startsWith(h.origin) && r.url.endsWith(".js"))).toEqual([]);
    // The page's own origin was checked (and failed) at most once a round.
    const checks = paused.filter((r) => r.method === "HEAD" && r.url === `${h.origin}/`);
    expect(checks.length).toBeGreaterThanOrEqual(1);
    expect(checks.length).toBeLessThanOrEqual(rounds);
    expect(await page.evaluate(() => navigator.onLine)).toBe(true);
    expect(await states(id)).toEqual(["closed", "closed", "closed"]);

    // Nothing open stored in IndexedDB, nor sent to the other tabs.
    await page.evaluate((id) => window.cbNet.flush(id), id);
    const stored = (await page.evaluate(() => window.cbNet.stored("cbfetch-uplink"))) as Array<{
      opened: number;
    }>;
    for (const record of stored) expect(record).toMatchObject({ opened: 0 });
    const sent = (await page.evaluate(() => window.cbNet.broadcast)) as Array<{ opened: number }>;
    for (const record of sent) expect(record).toMatchObject({ opened: 0 });

    await reconnect();
    for (const [i, api] of apis.entries()) {
      expect(await call(id, api)).toEqual({ ok: true, status: 200 });
      expect(api.hits).toBe((hits[i] ?? NaN) + 1);
    }
    await expectNoErrors();
  });

  it("a circuit opened by network errors alone is probed on the first call after offline and online", async () => {
    const id = "offline";
    await create(id, BREAKER);
    for (const api of apis) expect(await call(id, api)).toEqual({ ok: true, status: 200 });

    // a refuses connections while b and c answer: a real outage, as far as the page can tell.
    a.mode = "refuse";
    for (let i = 0; i < 3; i++) {
      expect(await call(id, a)).toMatchObject(NETWORK_ERROR);
      expect(await call(id, i % 2 ? b : c)).toEqual({ ok: true, status: 200 });
    }
    expect(await states(id)).toEqual(["open", "closed", "closed"]);
    const refused = a.hits;
    expect(await call(id, a)).toMatchObject(OPEN);
    expect(a.hits).toBe(refused);

    // The user's network goes away and comes back; meanwhile a is fine again.
    a.mode = "ok";
    await setOffline(true);
    await page.waitForFunction(() => window.cbNet.networkEvents.includes("offline"));
    expect(await page.evaluate(() => navigator.onLine)).toBe(false);
    await setOffline(false);
    await page.waitForFunction(() => window.cbNet.networkEvents.at(-1) === "online");
    expect(await page.evaluate(() => navigator.onLine)).toBe(true);

    // The first call after `online` is a's probe: it reaches a, and its success closes a.
    expect(await call(id, a)).toEqual({ ok: true, status: 200 });
    expect(a.hits).toBe(refused + 1);
    expect(await state(id, a)).toBe("closed");
    await expectNoErrors();
  });

  it("one origin refusing connections while two answer trips within failureThreshold calls; the others stay closed", async () => {
    const id = "outage";
    await create(id, BREAKER);
    for (const api of apis) expect(await call(id, api)).toEqual({ ok: true, status: 200 });

    a.mode = "refuse";
    for (let i = 1; i <= 3; i++) {
      expect(await state(id, a)).toBe("closed");
      expect(await call(id, a)).toMatchObject(NETWORK_ERROR);
      expect(await call(id, i % 2 ? b : c)).toEqual({ ok: true, status: 200 });
    }
    expect(await states(id)).toEqual(["open", "closed", "closed"]);
    const hits = a.hits;
    expect(await call(id, a)).toMatchObject(OPEN);
    expect(a.hits).toBe(hits);
    await expectNoErrors();
  });

  it("an SPA with one API: the API refusing connections trips it within failureThreshold calls, after one check of the page's own origin", async () => {
    const id = "spa";
    await create(id, BREAKER);
    const since = h.requests.length;
    a.mode = "refuse";
    for (let i = 0; i < 3; i++) expect(await call(id, a)).toMatchObject(NETWORK_ERROR);
    // The first error's verdict waits for the check; the caller's error did not.
    await page.waitForFunction((url) => window.cbNet.state("spa", url) === "open", a.url);
    const hits = a.hits;
    for (let i = 0; i < 2; i++) expect(await call(id, a)).toMatchObject(OPEN);
    expect(a.hits).toBe(hits);
    expect(checksSince(since)).toBe(1);
    expect(await states(id)).toEqual(["open", "closed", "closed"]);
    await expectNoErrors();
  });

  it("an API on the page's own origin is not checked: its network errors open nothing (its statuses would)", async () => {
    const id = "same-origin";
    await create(id, BREAKER);
    const since = h.requests.length;
    h.upstream.mode = "down";
    const api = { url: `${h.origin}/api/items` } as Api;
    for (let i = 0; i < 5; i++) expect(await call(id, api)).toMatchObject(NETWORK_ERROR);
    expect(await state(id, api)).toBe("closed");
    expect(checksSince(since)).toBe(0);
    h.upstream.mode = "fail"; // 503s: the origin answered, and failing statuses always count
    for (let i = 0; i < 3; i++) expect(await call(id, api)).toEqual({ ok: false, status: 503 });
    expect(await state(id, api)).toBe("open");
    await expectNoErrors();
  });

  it("a 503 outage of one origin trips it while the other origins are unreachable", async () => {
    const id = "503";
    await create(id, BREAKER);
    a.mode = "503";
    await disconnect([b, c, h]); // the network looks down: b, c and the page's origin fail
    for (let i = 0; i < 3; i++) {
      expect(await call(id, b)).toMatchObject(NETWORK_ERROR);
      expect(await call(id, c)).toMatchObject(NETWORK_ERROR);
      expect(await call(id, a)).toEqual({ ok: false, status: 503 });
    }
    expect(await states(id)).toEqual(["open", "closed", "closed"]);
    expect(a.hits).toBe(3);
    expect(await call(id, a)).toMatchObject(OPEN);
    expect(a.hits).toBe(3);
    await expectNoErrors();
  });
});

describe("cross-origin APIs (real Chromium)", () => {
  /** Seconds until `result`'s retryAt (an epoch time). */
  const opensFor = (result: NetCallResult) =>
    (("retryAt" in result ? (result.retryAt ?? NaN) : NaN) - Date.now()) / 1000;
  const QUICK = { failureThreshold: 3, openMs: 10_000, jitter: 0 };

  it("429 + Retry-After: 30 with Access-Control-Expose-Headers: Retry-After opens at once for 30 s", async () => {
    const id = "exposed";
    await create(id, QUICK);
    a.mode = "429";
    expect(await call(id, a)).toEqual({ ok: false, status: 429 });
    expect(await state(id, a)).toBe("open");
    const refused = await call(id, a);
    expect(refused).toMatchObject(OPEN);
    expect(opensFor(refused)).toBeGreaterThan(27);
    expect(opensFor(refused)).toBeLessThanOrEqual(30.05);
    expect(a.hits).toBe(1);
    await expectNoErrors();
  });

  it("without the exposed header Retry-After is invisible: 429s are ordinary failures, open after failureThreshold for openMs", async () => {
    const id = "hidden";
    await create(id, QUICK);
    a.mode = "429";
    a.cors.expose = false;
    for (let i = 1; i <= 3; i++) {
      expect(await state(id, a)).toBe("closed");
      expect(await call(id, a)).toEqual({ ok: false, status: 429 });
    }
    expect(await state(id, a)).toBe("open");
    const refused = await call(id, a);
    expect(refused).toMatchObject(OPEN);
    // openMs (10 s), not the 30 s the API asked for.
    expect(opensFor(refused)).toBeGreaterThan(7);
    expect(opensFor(refused)).toBeLessThanOrEqual(10.05);
    expect(a.hits).toBe(3);
    await expectNoErrors();
  });

  it("without Access-Control-Allow-Origin every call is a TypeError: the API's circuit opens within failureThreshold calls (the page's own origin answers the check)", async () => {
    a.cors.allow = false;
    // An app talking to this API only: the requests did reach the API, but the browser hid its
    // answers, so each is a network error; the page's origin answers the check, so they count.
    const lonely = "lonely";
    await create(lonely, QUICK);
    for (let i = 0; i < 3; i++) expect(await call(lonely, a)).toMatchObject(NETWORK_ERROR);
    await page.waitForFunction((url) => window.cbNet.state("lonely", url) === "open", a.url);
    expect(await call(lonely, a)).toMatchObject(OPEN);
    expect(a.hits).toBe(3);

    // With the check off, nothing answered: it looks like the user's network, nothing opens.
    const unchecked = "unchecked";
    await create(unchecked, { ...QUICK, networkCheck: false });
    for (let i = 0; i < 5; i++) expect(await call(unchecked, a)).toMatchObject(NETWORK_ERROR);
    expect(await state(unchecked, a)).toBe("closed");
    expect(a.hits).toBe(8);
    expect(h.errors.some((line) => /has been blocked by CORS policy/.test(line))).toBe(true);
    await expectNoErrors();
  });
});

describe("exactly fetch in real Chromium (issue 23)", () => {
  it('a Request with referrerPolicy "no-referrer" sends no Referer, with timeoutMs too', async () => {
    for (const [id, options] of [
      ["plain", {}],
      ["timed", { timeoutMs: 10_000 }],
    ] as const) {
      await create(`referrer-${id}`, options);
      const before = a.referers.length;
      const result = await page.evaluate(
        ({ id, url }) => window.cbNet.callRequest(id, url, { referrerPolicy: "no-referrer" }),
        { id: `referrer-${id}`, url: a.url },
      );
      expect(result).toEqual({ ok: true, status: 200 });
      expect(a.referers.slice(before), id).toEqual([""]);
      // And a Request keeping the default policy sends the page's origin, as fetch does.
      await page.evaluate(({ id, url }) => window.cbNet.callRequest(id, url, {}), {
        id: `referrer-${id}`,
        url: a.url,
      });
      expect(a.referers.at(-1), id).toBe(`${h.origin}/`);
    }
    await expectNoErrors();
  });
});

describe("a chunk that fails to load once (issue 23, checked in real Chromium)", () => {
  it("the instance works without that part and reports it once; a later import requests the chunk again (no failure is cached)", async () => {
    // The bulkhead's code (`maxConcurrent`): loaded by no other test of this file.
    const chunk = h.scripts.find((s) => s.entryPoint?.endsWith("guards/bulkhead.ts"));
    expect(chunk, "the bulkhead code is a chunk of its own").toBeDefined();
    const path = chunk?.path ?? "";
    // The next request for that chunk fails, as over a flaky network; later ones would not.
    let failed = 0;
    const session = await h.context.newCDPSession(page);
    session.on("Fetch.requestPaused", ({ requestId }) => {
      failed++;
      session
        .send("Fetch.failRequest", { requestId, errorReason: "ConnectionReset" })
        .then(() => session.send("Fetch.disable"))
        .catch(() => {});
    });
    await session.send("Fetch.enable", { patterns: [{ urlPattern: `${h.origin}${path}` }] });
    await create("chunk-1", { maxConcurrent: 4 });
    expect(await call("chunk-1", a)).toEqual({ ok: true, status: 200 });
    expect(failed).toBe(1);
    const errors = await page.evaluate(() => window.cbNet.storeErrors.slice());
    expect(errors).toEqual([expect.stringMatching(/dynamically imported module/)]);

    // A second instance imports the same chunk again, with the network fine by now.
    const served = h.requests.filter((r) => r.path === path).length;
    await create("chunk-2", { maxConcurrent: 4 });
    expect(await call("chunk-2", a)).toEqual({ ok: true, status: 200 });
    // Chromium 156 does not keep the failure in its module map: the chunk is requested again,
    // and the second instance has its bulkhead code (no second report).
    expect(h.requests.filter((r) => r.path === path).length - served).toBe(1);
    expect(await page.evaluate(() => window.cbNet.storeErrors.length)).toBe(errors.length);
    await session.detach();
  });
});
