import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, type CDPSession, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM_ARGS } from "./harness.js";
import { type Origin, type Site, startApi, startImages, startSite } from "./sw-servers.js";
import type { PageTransition, SwCall } from "./sw.page.js";

// Issue 28: cbfetch/sw in Debian's real Chromium. One site (its page, its module Service
// Worker), an API origin and an image origin, each a real server on 127.0.0.1 that counts the
// requests reaching it; two tabs. The worker is served bundled (esbuild, code splitting on) and
// unbundled (each module as it is): a Service Worker may not use import(), so either way it
// must work without one.

interface Breaker {
  key: string;
  state: string;
  successes: number;
  failures: number;
  retryAt: number;
}
interface WorkerView {
  started: number;
  breakers: Breaker[];
  transitions: PageTransition[];
  storeErrors: string[];
}

/** DESIGN §4: a page learns of another context's change within this bound. */
const PROPAGATION_BOUND_MS = 50;
/** The probe's answer takes this long: every call of both tabs is issued meanwhile. */
const PROBE_DELAY_MS = 2000;

async function launch(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = await mkdtemp(join(tmpdir(), "cbfetch-sw-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true, maxRetries: 5 });
    },
  };
}

/** Opens `path` of the site in a new tab and waits for its script. */
async function open(context: BrowserContext, site: Site, path = "/"): Promise<Page> {
  const page = context.pages().find((p) => p.url() === "about:blank") ?? (await context.newPage());
  await page.goto(site.origin + path);
  await page.waitForFunction(() => "swTest" in window);
  return page;
}

const call = (page: Page, url: string): Promise<SwCall> =>
  page.evaluate((u) => window.swTest.call(u), url);
const image = (page: Page, url: string): Promise<string> =>
  page.evaluate((u) => window.swTest.image(u), url);
/** What the worker knows (answered by the worker itself: no server is asked). */
const view = async (page: Page, due?: string): Promise<WorkerView> =>
  page.evaluate(
    (q) => fetch(`/__sw${q}`).then((r) => r.json()),
    due ? `?due=${encodeURIComponent(due)}` : "",
  ) as Promise<WorkerView>;
const stateOf = (v: WorkerView, key: string) =>
  v.breakers.find((b) => b.key === key)?.state ?? "closed";

/** Waits until the worker's breaker for `key` is in `state` (asking the worker). */
async function until(page: Page, key: string, state: string): Promise<WorkerView> {
  for (let i = 0; i < 200; i++) {
    const v = await view(page);
    if (stateOf(v, key) === state) return v;
    await page.waitForTimeout(25);
  }
  throw new Error(`the worker's ${key} never became ${state}: ${JSON.stringify(await view(page))}`);
}

/** A refused request as the worker answers it. */
function expectRefused(result: SwCall, key: string): void {
  expect(result).toEqual({
    status: 503,
    retryAfter: expect.stringMatching(/^[1-9]\d*$/),
    circuit: "open",
    key,
    bodyLength: 0,
  });
}

describe.each([
  ["bundled (esbuild, code splitting)", "/sw.js"],
  ["unbundled (module by module)", "/unbundled/test/browser/sw.worker.js"],
])("cbfetch/sw, a %s module Service Worker", (_name, script) => {
  let site: Site;
  let api: Origin;
  let api2: Origin;
  let images: Origin;
  let browser: Awaited<ReturnType<typeof launch>>;
  let a: Page;
  let b: Page;

  beforeAll(async () => {
    [site, api, api2, images] = await Promise.all([
      startSite(),
      startApi(),
      startApi(),
      startImages(),
    ]);
    browser = await launch();
    a = await open(browser.context, site);
    expect(await a.evaluate((url) => window.swTest.register(url), script)).toBe(true);
    b = await open(browser.context, site);
    expect(await b.evaluate(() => window.swTest.controlled())).toBe(true);
  });
  afterAll(async () => {
    await browser?.close();
    await Promise.all([site, api, api2, images].map((o) => o?.close()));
  });

  it("reaches no import(): one file when bundled, no import() in any module it loaded", () => {
    const served = [...site.workerScripts.keys()];
    if (script === "/sw.js") {
      expect(site.bundledFiles).toEqual(["/sw.js"]);
      expect(served).toEqual(["/sw.js"]);
    } else {
      expect(served).toContain("/unbundled/src/sw/index.js");
      expect(served).toContain("/unbundled/src/shared/shared-state.js");
      expect(served.some((p) => /fetch\/(lazy|create)\.js$/.test(p))).toBe(false);
    }
    for (const [path, code] of site.workerScripts) {
      expect(code, path).not.toMatch(/\bimport\(\s*["'`./]/);
    }
  });

  it("trips on the API's 503s and the image host's dropped connections; then neither tab reaches them", async () => {
    // Healthy first: an image is an opaque (no-cors) response, a success.
    expect(await image(a, `${images.origin}/ok.png`)).toBe("load");
    expect((await call(a, `${api.origin}/items`)).status).toBe(200);
    // An opaque response carries no status: the image host's 503 is no failure.
    images.mode = "fail";
    expect(await image(b, `${images.origin}/503.png`)).toBe("error");
    let v = await view(a);
    expect(v.breakers.find((x) => x.key === images.origin)).toMatchObject({
      state: "closed",
      successes: 2,
      failures: 0,
    });

    api.mode = "fail";
    images.mode = "down";
    for (let i = 0; i < 3; i++) {
      const result = await call(i % 2 ? a : b, `${api.origin}/items/${i}`);
      expect(result).toMatchObject({ status: 503, circuit: null }); // the API's own 503
      expect(await image(i % 2 ? b : a, `${images.origin}/down-${i}.png`)).toBe("error");
    }
    await until(a, api.origin, "open");
    v = await until(a, images.origin, "open");
    expect(v.storeErrors).toEqual([]);

    const apiHits = api.hits.length;
    const imageHits = images.hits.length;
    for (const page of [a, b]) {
      for (let i = 0; i < 2; i++) {
        expectRefused(await call(page, `${api.origin}/items/after-${i}`), api.origin);
        expect(await image(page, `${images.origin}/after-${i}.png`)).toBe("error");
      }
    }
    // The image's refusal is the same 503 (read here by a page's fetch of the same URL).
    expectRefused(await call(b, `${images.origin}/after.png`), images.origin);
    expect(api.hits.length).toBe(apiHits);
    expect(images.hits.length).toBe(imageHits);
    // Stored: what a worker started cold finds.
    const stored = (await a.evaluate(() => window.swTest.stored())) as Array<{ key: string }>;
    expect(stored.map((r) => r.key).sort()).toEqual([api.origin, images.origin].sort());
  });

  it("a worker stopped and started again by the next request: still open, still 0 requests", async () => {
    const before = await view(a);
    const cdp: CDPSession = await browser.context.newCDPSession(a);
    await cdp.send("ServiceWorker.enable");
    const stopped = new Promise<void>((resolve) => {
      cdp.on("ServiceWorker.workerVersionUpdated", ({ versions }) => {
        if (versions.some((v: { runningStatus: string }) => v.runningStatus === "stopped")) {
          resolve();
        }
      });
    });
    await cdp.send("ServiceWorker.stopAllWorkers");
    await stopped;
    const apiHits = api.hits.length;
    const imageHits = images.hits.length;
    // The first request starts the worker cold: it loads the stored state before answering.
    expectRefused(await call(b, `${api.origin}/items/cold`), api.origin);
    expect(await image(a, `${images.origin}/cold.png`)).toBe("error");
    const after = await view(b);
    expect(after.started).not.toBe(before.started); // a new start of the worker
    expect(stateOf(after, api.origin)).toBe("open");
    expect(stateOf(after, images.origin)).toBe("open");
    expect(api.hits.length).toBe(apiHits);
    expect(images.hits.length).toBe(imageHits);
    await cdp.detach();
  });

  it("half-open: exactly one probe across both tabs", async () => {
    api.mode = "ok";
    api.delayMs = PROBE_DELAY_MS;
    await view(a, api.origin); // the circuit is due: its next request is the probe
    const hits = api.hits.length;
    const burst = (page: Page, tab: string) =>
      page.evaluate(
        ({ url, tab }) =>
          Promise.all(Array.from({ length: 5 }, (_, i) => window.swTest.call(`${url}/${tab}${i}`))),
        { url: `${api.origin}/probe`, tab },
      );
    const [fromA, fromB] = await Promise.all([burst(a, "a"), burst(b, "b")]);
    const all = [...fromA, ...fromB];
    expect(all.filter((r) => r.status === 200)).toHaveLength(1);
    for (const refused of all.filter((r) => r.status !== 200)) expectRefused(refused, api.origin);
    expect(api.hits.length - hits).toBe(1);
    expect(stateOf(await view(a), api.origin)).toBe("closed");
    api.delayMs = 0;
  });

  it("a page's createCbFetch({ sync: true }) sees the worker's open within 50 ms", async () => {
    const c = await browser.context.newPage();
    await c.goto(`${site.origin}/?sync`);
    await c.waitForFunction(() => "swTest" in window);
    expect(await c.evaluate(() => window.swTest.ready())).toBe(true);
    api2.mode = "fail";
    for (let i = 0; i < 3; i++) await call(a, `${api2.origin}/x${i}`);
    const v = await until(a, api2.origin, "open");
    const opened = v.transitions.find((t) => t.key === api2.origin && t.to === "open")!;
    await c.waitForFunction(
      (key) => window.swTest.transitions.some((t) => t.key === key && t.to === "open"),
      api2.origin,
      { polling: 5, timeout: 5000 },
    );
    const seen = (await c.evaluate(() => window.swTest.transitions)).find(
      (t) => t.key === api2.origin && t.to === "open",
    )!;
    expect(seen.at - opened.at).toBeLessThan(PROPAGATION_BOUND_MS);
    expect(await c.evaluate((key) => window.swTest.state(key), api2.origin)).toBe("open");
    await c.close();
  });

  it("a navigation to a failing page of the site gets the offline page, never a bare 503", async () => {
    site.mode = "fail";
    for (let i = 0; i < 3; i++) {
      const response = await b.goto(`${site.origin}/flaky`);
      expect(response?.status()).toBe(503); // the site's own answer
    }
    await until(a, site.origin, "open");
    const hits = site.hits.length;
    const response = await b.goto(`${site.origin}/flaky`);
    expect(response?.status()).toBe(200);
    expect(await b.textContent("h1")).toBe("Offline");
    expect(site.hits.length).toBe(hits);
    site.mode = "ok";
  });
});

describe("cbfetch/sw on a dead uplink (every origin cut, the site's own included)", () => {
  let site: Site;
  let api: Origin;
  let images: Origin;
  let browser: Awaited<ReturnType<typeof launch>>;

  beforeAll(async () => {
    [site, api, images] = await Promise.all([startSite(), startApi(), startImages()]);
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
    await Promise.all([site, api, images].map((o) => o?.close()));
  });

  it("opens nothing and stores nothing; a navigation gets the offline page", async () => {
    const page = await open(browser.context, site);
    expect(await page.evaluate(() => window.swTest.register("/sw.js"))).toBe(true);
    expect(await image(page, `${images.origin}/ok.png`)).toBe("load");
    expect((await call(page, `${api.origin}/items`)).status).toBe(200);
    await Promise.all([site, api, images].map((o) => o.close()));
    for (let i = 0; i < 6; i++) {
      expect((await call(page, `${api.origin}/items/${i}`)).error).toMatch(/TypeError/);
      expect(await image(page, `${images.origin}/${i}.png`)).toBe("error");
    }
    const v = await view(page);
    expect(v.breakers.map((x) => x.state)).toEqual(["closed", "closed"]);
    expect(v.transitions).toEqual([]);
    expect(await page.evaluate(() => window.swTest.stored())).toEqual([]);
    // A navigation the network fails gets the offline page from the worker's cache.
    const response = await page.goto(`${site.origin}/flaky`);
    expect(response?.status()).toBe(200);
    expect(await page.textContent("h1")).toBe("Offline");
  });
});

describe("createCbFetch in a Service Worker (bundled with code splitting), with a store and sync", () => {
  let site: Site;
  let live: Origin;
  let browser: Awaited<ReturnType<typeof launch>>;

  beforeAll(async () => {
    [site, live] = await Promise.all([startSite(), startApi()]);
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
    await Promise.all([site, live].map((o) => o?.close()));
  });

  it("cbfetch/sw's trips on refused connections once another origin answered; cbfetch's cannot load its parts there", async () => {
    const dead = await startApi();
    await dead.close(); // nothing listens on its port: every connection is refused
    const page = await open(browser.context, site);
    expect(await page.evaluate(() => window.swTest.register("/core-sw.js"))).toBe(true);
    const result = (await page.evaluate(
      (q) => fetch(`/__core?${q}`).then((r) => r.json()),
      new URLSearchParams({ live: `${live.origin}/`, dead: dead.origin }).toString(),
    )) as Record<"sw" | "core", { state: string; ignored: number; storeErrors: string[] }>;
    expect(result.sw).toMatchObject({ state: "open", ignored: 0, failures: 3, rejections: 3 });
    expect(result.sw.storeErrors).toEqual([]);
    const stored = await page.evaluate(
      () =>
        new Promise((resolve) => {
          const request = indexedDB.open("cbfetch-sw-core");
          request.onsuccess = () => {
            const all = request.result.transaction("breakers").objectStore("breakers").getAll();
            all.onsuccess = () => resolve(all.result.map((r: { key: string }) => r.key));
          };
        }),
    );
    expect(stored).toEqual([dead.origin]);
    // cbfetch's own createCbFetch: its store and sync code cannot load in a Service Worker.
    expect(result.core.storeErrors.join("\n")).toMatch(/import\(\) is disallowed/);
  });
});

describe("cbfetch/sw beside Workbox (workbox-routing, workbox-strategies): its plugin on handleFetch's breakers", () => {
  let site: Site;
  let api: Origin;
  let api2: Origin;
  let browser: Awaited<ReturnType<typeof launch>>;
  let page: Page;

  beforeAll(async () => {
    [site, api, api2] = await Promise.all([startSite(), startApi(), startApi()]);
    browser = await launch();
    page = await open(browser.context, site);
    expect(await page.evaluate(() => window.swTest.register("/workbox-sw.js"))).toBe(true);
  });
  afterAll(async () => {
    await browser?.close();
    await Promise.all([site, api, api2].map((o) => o?.close()));
  });

  it("trips on a NetworkFirst route's 503s; then its cache answers, or the refusal's 503, and no request goes", async () => {
    expect((await call(page, `${api.origin}/api/items`)).status).toBe(200); // cached by Workbox
    api.mode = "fail";
    for (let i = 0; i < 3; i++) {
      expect(await call(page, `${api.origin}/api/x${i}`)).toMatchObject({
        status: 503,
        circuit: null,
      });
    }
    const hits = api.hits.length;
    const v = await view(page);
    expect(stateOf(v, api.origin)).toBe("open");
    // Refused: NetworkFirst falls back to its cache, else the refusal's 503.
    expect((await call(page, `${api.origin}/api/items`)).status).toBe(200);
    expectRefused(await call(page, `${api.origin}/api/new`), api.origin);
    // The rest of the site (handleFetch) shares the state: the same origin outside the route.
    expectRefused(await call(page, `${api.origin}/other`), api.origin);
    expect(api.hits.length).toBe(hits);
  });

  it("counts a route's network errors while the site's own origin answers (the check of a second place)", async () => {
    api2.mode = "down";
    for (let i = 0; i < 3; i++) {
      expect((await call(page, `${api2.origin}/api/x${i}`)).error).toMatch(/TypeError/);
    }
    await until(page, api2.origin, "open");
    const hits = api2.hits.length;
    expectRefused(await call(page, `${api2.origin}/api/y`), api2.origin);
    expect(api2.hits.length).toBe(hits);
  });
});
