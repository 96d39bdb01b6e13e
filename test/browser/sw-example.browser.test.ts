import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
// @ts-expect-error: plain JavaScript without types (web-example/server.mjs)
import { startDashboard } from "../../web-example/server.mjs";
import { CHROMIUM_ARGS } from "./harness.js";

// Issue 28: the dashboard's Service Worker mode (web-example), end to end in real Chromium:
// the switch registers web-example/src/sw.js (as the README shows it); in two tabs, pictures
// from upstream B stop loading at once when B goes down, with no request reaching B; the
// banner shows while upstream A is open.

interface Dashboard {
  url: string;
  upstreams: Array<{ name: string; origin: string }>;
  close(): Promise<void>;
}

let dashboard: Dashboard;
let profile: string;
let context: BrowserContext;

beforeAll(async () => {
  dashboard = (await startDashboard({ port: 0 })) as Dashboard;
  profile = await mkdtemp(join(tmpdir(), "cbfetch-sw-example-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
  });
});
afterAll(async () => {
  await context?.close();
  await dashboard?.close();
  if (profile) await rm(profile, { recursive: true, force: true, maxRetries: 5 });
});

const hitsOf = async (origin: string) =>
  ((await (await fetch(`${origin}/__stats`)).json()) as { hits: number }).hits;
const setMode = (origin: string, mode: string) =>
  fetch(`${origin}/__mode`, { method: "POST", body: JSON.stringify({ mode }) });

async function openDashboard(): Promise<Page> {
  const page = context.pages().find((p) => p.url() === "about:blank") ?? (await context.newPage());
  await page.goto(dashboard.url);
  await page.waitForSelector("body[data-ready=true]");
  return page;
}

/** Waits until every picture of the strip in `page` failed to load in one round. */
const allBroken = (page: Page) =>
  page.waitForFunction(
    () => {
      const images = [...document.querySelectorAll("#sw-images img")];
      return images.length > 0 && images.every((img) => img.classList.contains("broken"));
    },
    undefined,
    { timeout: 15_000 },
  );

it("Service Worker mode: B's pictures stop loading in every tab at once, and the banner shows A's open", async () => {
  const [a, b] = dashboard.upstreams;
  const first = await openDashboard();
  await first.check("#sw-mode");
  await first.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, {
    timeout: 15_000,
  });
  const second = await openDashboard();
  expect(await second.isChecked("#sw-mode")).toBe(true);
  await second.waitForSelector("#sw-images img[src]");

  await setMode(b!.origin, "down");
  await Promise.all([allBroken(first), allBroken(second)]);
  // The worker's circuit for B is open (a page hears it on the worker's channel)...
  await first.waitForFunction(
    () => document.getElementById("sw-panel")?.dataset.open?.split(" ").includes("B"),
    undefined,
    { timeout: 15_000 },
  );
  const rounds = (page: Page) =>
    page.evaluate(() => Number(document.getElementById("sw-images")?.dataset.round));
  const nextRound = async (page: Page) => {
    const before = await rounds(page);
    await page.waitForFunction(
      (n) => Number(document.getElementById("sw-images")?.dataset.round) > n,
      before,
      { timeout: 10_000 },
    );
  };
  // ...and the requests that were in flight when it opened have ended (a round later).
  await Promise.all([nextRound(first), nextRound(second)]);
  const hits = await hitsOf(b!.origin);
  // A whole round of pictures in each tab while open: nothing reaches B.
  await Promise.all([nextRound(first), nextRound(second)]);
  const after = await hitsOf(b!.origin);
  const stillOpen = (await first.getAttribute("#sw-panel", "data-open"))?.split(" ").includes("B");
  // On a machine so slow that the open time (5 s) ran out meanwhile, its one probe went out
  // (Chromium tries a GET whose connection closed without a byte up to 3 times).
  expect(after - hits).toBeLessThanOrEqual(stillOpen ? 0 : 3);

  await setMode(a!.origin, "down");
  await first.waitForSelector("#sw-banner:not([hidden])", { timeout: 15_000 });
  expect(await first.textContent("#sw-banner")).toContain(`Upstream ${a!.name} is unreachable`);
  await setMode(a!.origin, "healthy");
  await setMode(b!.origin, "healthy");
});
