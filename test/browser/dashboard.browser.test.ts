import { type ChildProcess, spawn } from "node:child_process";
import { access, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BrowserContext, chromium, type ConsoleMessage, type Page } from "playwright-core";
import { CHROMIUM_ARGS } from "./harness.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Issue 6: the live dashboard of `npm start` (web-example/), end to end. web-example/server.mjs
// runs as `npm start` runs it (a child process; it prints its URL), and Debian's Chromium
// drives the page like a user: it breaks an upstream with the page's buttons, reloads, opens a
// second tab, heals the upstream, and watches the cards.
const root = fileURLToPath(new URL("../../", import.meta.url));
const SERVER = join(root, "web-example/server.mjs");
/**
 * The page's open time (`?openMs=`). With the default ±20 % jitter the circuit stays open at
 * least 6.4 s: room for a reload and a second tab before the probe, even on a busy machine.
 */
const OPEN_MS = 8000;
const VIEWPORT = { width: 1000, height: 650 };
/** A phone's width: the cards must fit it, badge included. */
const PHONE = { width: 360, height: 800 };
/**
 * The README's screenshots, at desktop width and at 360 px: written when missing, or when
 * UPDATE_DASHBOARD_SCREENSHOT=1 (to refresh them); always to .artifacts/.
 */
const README_SHOT = join(root, "web-example/dashboard.png");
const PHONE_SHOT = join(root, "web-example/dashboard-360.png");
const UPDATE_SHOT = process.env.UPDATE_DASHBOARD_SCREENSHOT === "1";

interface Upstream {
  name: string;
  origin: string;
}

let server: ChildProcess;
let serverOutput = "";
let url: string;
let upstreams: Upstream[];
let profile: string;
let context: BrowserContext;
let page: Page;
const errors: string[] = [];

/** Starts server.mjs on free ports and resolves with the dashboard URL it prints. */
function startServer(): Promise<string> {
  server = spawn(process.execPath, [SERVER], {
    env: { ...process.env, PORT: "0", UPSTREAM_PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  server.stdout?.setEncoding("utf8").on("data", (chunk: string) => (serverOutput += chunk));
  server.stderr?.setEncoding("utf8").on("data", (chunk: string) => (serverOutput += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL in 30 s:\n${serverOutput}`)), 30_000);
    const check = () => {
      const match = /cbfetch dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(serverOutput);
      if (!match?.[1]) return;
      clearTimeout(timer);
      resolve(match[1]);
    };
    server.stdout?.on("data", check);
    server.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server.mjs exited (${code}) before printing its URL:\n${serverOutput}`));
    });
  });
}

/** Resolves with the server's exit code once it has exited. */
function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

function watch(p: Page): void {
  p.on("pageerror", (error) => errors.push(`pageerror: ${error.stack ?? error.message}`));
  p.on("console", (message: ConsoleMessage) => {
    if (message.type() !== "error") return;
    const { url: at } = message.location();
    // The browser logs every failing upstream answer (503, 429, dropped): that is the demo.
    const expected =
      message.text().startsWith("Failed to load resource") &&
      upstreams.some((u) => at.startsWith(`${u.origin}/`));
    if (!expected) errors.push(`console.error: ${message.text()} (${at})`);
  });
}

beforeAll(async () => {
  url = await startServer();
  const config = (await (await fetch(new URL("/config.json", url))).json()) as {
    upstreams: Upstream[];
  };
  upstreams = config.upstreams;
  expect(upstreams.map((u) => u.name)).toEqual(["A", "B"]);

  profile = await mkdtemp(join(tmpdir(), "cbfetch-dashboard-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: VIEWPORT,
  });
  // Every badge text each card shows, from the page's first moment: a reload must never show
  // "closed" for a circuit that is open (the cards read "loading" until the state is in).
  await context.addInitScript(() => {
    const history: Record<string, string[]> = {};
    (window as unknown as { badges: typeof history }).badges = history;
    new MutationObserver(() => {
      for (const card of document.querySelectorAll<HTMLElement>("[data-upstream]")) {
        const text = card.querySelector(".badge")?.textContent ?? "";
        const list = (history[card.dataset.upstream ?? ""] ??= []);
        if (list.at(-1) !== text) list.push(text);
      }
    }).observe(document, { subtree: true, childList: true, characterData: true });
  });
  context.on("page", watch);
  const initial = context.pages()[0];
  if (initial) watch(initial);
  page = initial ?? (await context.newPage());
});

afterAll(async () => {
  try {
    await context?.close();
  } finally {
    if (server && server.exitCode === null && server.signalCode === null) server.kill("SIGKILL");
    if (profile) await rm(profile, { recursive: true, force: true, maxRetries: 5 });
  }
});

const upstream = (name: string): Upstream => {
  const found = upstreams.find((u) => u.name === name);
  if (!found) throw new Error(`no upstream ${name}`);
  return found;
};
/** Requests that reached the upstream's API (its control paths and preflights not counted). */
const hits = async (name: string): Promise<number> =>
  ((await (await fetch(`${upstream(name).origin}/__stats`)).json()) as { hits: number }).hits;

const card = (p: Page, name: string) => p.locator(`[data-upstream="${name}"]`);
const badge = (p: Page, name: string) => card(p, name).locator(".badge").textContent();
const count = async (p: Page, name: string, field: string): Promise<number> =>
  Number(await card(p, name).locator(`[data-field="${field}"]`).textContent());
const retryAt = async (p: Page, name: string): Promise<number> =>
  Number(await card(p, name).getAttribute("data-retry-at"));
const timeline = (p: Page, name: string) =>
  card(p, name).locator('[data-field="timeline"] li').allTextContents();
/** The badge texts a card showed since the page loaded, in order. */
const badges = (p: Page, name: string): Promise<string[]> =>
  p.evaluate(
    (n) => (window as unknown as { badges: Record<string, string[]> }).badges[n] ?? [],
    name,
  );

async function open(): Promise<void> {
  await page.goto(new URL(`?openMs=${OPEN_MS}`, url).href);
  await page.waitForSelector("body[data-ready]");
}

/** Waits until the card's badge reads `state`; on a timeout, says which card and what it read. */
async function waitForState(p: Page, name: string, state: string, timeout = 10_000) {
  await p
    .waitForFunction(
      ([n, s]) => document.querySelector(`[data-upstream="${n}"] .badge`)?.textContent === s,
      [name, state],
      { timeout, polling: 50 },
    )
    .catch(async () => {
      throw new Error(`card ${name} never read "${state}" (it reads "${await badge(p, name)}")`);
    });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Fails loudly if the machine was too slow for a "nothing was sent while open" check. */
function expectStillOpen(at: number): void {
  expect(Date.now(), "the probe time passed before the check: machine too slow").toBeLessThan(at);
}

describe("the live dashboard (web-example/server.mjs, real Chromium)", () => {
  it(
    "opens a circuit, keeps it across a reload and a second tab, and closes it after the probe",
    { timeout: 120_000 },
    async () => {
      await open();
      await waitFor("successful calls on both cards", async () => {
        return (
          (await count(page, "A", "successes")) > 0 && (await count(page, "B", "successes")) > 0
        );
      });
      expect(await badge(page, "A")).toBe("closed");

      // Break upstream A with its card's button: 3 failures in a row open its circuit.
      await card(page, "A").locator('button[data-mode="503"]').click();
      await waitForState(page, "A", "open");
      const probeAt = await retryAt(page, "A");
      const before = await hits("A");
      // One breaker per origin: B is untouched.
      expect(await badge(page, "B")).toBe("closed");
      expect(await timeline(page, "A")).toEqual([
        expect.stringMatching(/closed → open · probe after \d+\.\d s$/),
      ]);

      // Reload while open: the card is open again at once, and calls are refused unsent.
      await page.reload();
      await page.waitForSelector("body[data-ready]");
      await waitForState(page, "A", "open", 2000);
      await waitFor("refused calls after the reload", async () => {
        return (await count(page, "A", "rejections")) >= 2;
      });
      expect(await hits("A")).toBe(before);
      expectStillOpen(probeAt);
      expect(await retryAt(page, "A")).toBeCloseTo(probeAt, -1);
      // "loading" until the state was in, then open: never a moment of "closed".
      expect(await badges(page, "A")).toEqual(["loading", "open"]);
      // The restored state is marked as found at load, not caused by this tab's calls.
      expect((await timeline(page, "A"))[0]).toMatch(/^\S+ open · probe after \d+\.\d s restored$/);

      // A second tab of the same browser: open there too, from the first tab and IndexedDB.
      const second = await context.newPage();
      await second.goto(page.url());
      await second.waitForSelector("body[data-ready]");
      await waitForState(second, "A", "open", 2000);
      expect(await badges(second, "A")).toEqual(["loading", "open"]);
      await waitFor("refused calls in the second tab", async () => {
        return (await count(second, "A", "rejections")) >= 2;
      });
      expect(await hits("A")).toBe(before);
      expectStillOpen(probeAt);
      expect(await retryAt(second, "A")).toBeCloseTo(probeAt, -1);

      // Heal A from the second tab; both tabs' buttons follow the upstream's mode.
      await card(second, "A").locator('button[data-mode="healthy"]').click();
      await waitFor("the first tab to show A healthy", async () => {
        const pressed = card(page, "A").locator('button[aria-pressed="true"]');
        return (await pressed.textContent()) === "healthy";
      });
      // After the open time, one probe (in one of the tabs) succeeds and both tabs close.
      const closeBy = probeAt - Date.now() + 10_000;
      await waitForState(page, "A", "closed", closeBy);
      await waitForState(second, "A", "closed", 5000);
      expect(await hits("A")).toBeGreaterThan(before);
      const seen = [...(await timeline(page, "A")), ...(await timeline(second, "A"))];
      expect(seen.some((t) => /half-open → closed/.test(t))).toBe(true);
      await second.close();

      // Retry-After on B: open at once, for exactly the 5 s the upstream asked (no jitter).
      await card(page, "B").locator('button[data-mode="retry-after"]').click();
      await waitForState(page, "B", "open");
      const retryIn = (await retryAt(page, "B")) - Date.now();
      // Less whatever the waiting took; a few ms over 5 s at most (the page's clock vs ours).
      expect(retryIn).toBeGreaterThan(3000);
      expect(retryIn).toBeLessThanOrEqual(5050);
      expect(await badge(page, "A")).toBe("closed");

      // A second tab while B stays rate-limited: after 5 s one tab's probe gets another 429
      // and B re-opens. The tab that probed shows it as its own; the other, which learnt it
      // over BroadcastChannel (with or without a state change of its own), as another tab's.
      const third = await context.newPage();
      await third.goto(page.url());
      await third.waitForSelector("body[data-ready]");
      await waitForState(third, "B", "open", 2000);
      expect(await badges(third, "B")).toEqual(["loading", "open"]);
      const reopened = async (p: Page) => Number(await card(p, "B").getAttribute("data-reopens"));
      await waitFor(
        "B to re-open in both tabs",
        async () => {
          return (await reopened(page)) >= 1 && (await reopened(third)) >= 1;
        },
        15_000,
      );
      const reopens = [...(await timeline(page, "B")), ...(await timeline(third, "B"))].filter(
        (t) => / → open · re-open ×1 · probe after /.test(t),
      );
      expect(reopens).toHaveLength(2);
      expect(reopens.filter((t) => t.endsWith("another tab"))).toHaveLength(1);
      // The desktop screenshot: A closed again after its outage, B re-opened by a 429.
      await mkdir(join(root, ".artifacts"), { recursive: true });
      await page.screenshot({ path: join(root, ".artifacts/dashboard.png") });
      const missing = (path: string) =>
        access(path).then(
          () => false,
          () => true,
        );
      if ((await missing(README_SHOT)) || UPDATE_SHOT) await page.screenshot({ path: README_SHOT });
      await card(page, "B").locator('button[data-mode="healthy"]').click();
      await third.close();

      // A reload shows the re-open as one, not as "closed → open".
      await page.reload();
      await page.waitForSelector("body[data-ready]");
      expect(await badges(page, "B")).toEqual(["loading", "open"]);
      expect((await timeline(page, "B"))[0]).toMatch(
        /^\S+ open · re-open ×1 · probe after \d+\.\d s restored$/,
      );

      // At 360 px (a small phone): one column, nothing wider than the page, badges whole.
      await page.setViewportSize(PHONE);
      await page.evaluate(() => new Promise(requestAnimationFrame));
      const layout = await page.evaluate(() => ({
        page: document.documentElement.scrollWidth,
        cards: [...document.querySelectorAll(".card")].map((c) => {
          const card = c.getBoundingClientRect();
          const badge = c.querySelector(".badge")?.getBoundingClientRect();
          const head = c.querySelector(".card-head h2")?.getBoundingClientRect();
          return {
            left: card.left,
            right: card.right,
            badgeLeft: badge?.left ?? -1,
            badgeRight: badge?.right ?? Infinity,
            badgeWidth: (c.querySelector(".badge") as HTMLElement | null)?.scrollWidth ?? 0,
            badgeClient: (c.querySelector(".badge") as HTMLElement | null)?.clientWidth ?? -1,
            headRight: head?.right ?? Infinity,
          };
        }),
      }));
      expect(layout.page).toBeLessThanOrEqual(PHONE.width);
      expect(layout.cards).toHaveLength(2);
      for (const c of layout.cards) {
        expect(c.left).toBeGreaterThanOrEqual(0);
        expect(c.right).toBeLessThanOrEqual(PHONE.width);
        expect(c.badgeLeft).toBeGreaterThanOrEqual(c.left);
        expect(c.badgeRight).toBeLessThanOrEqual(c.right);
        expect(c.badgeWidth).toBeLessThanOrEqual(c.badgeClient); // its text is not cut
        expect(c.headRight).toBeLessThanOrEqual(c.badgeLeft); // the title does not run under it
      }
      await page.screenshot({ path: join(root, ".artifacts/dashboard-360.png"), fullPage: true });
      if ((await missing(PHONE_SHOT)) || UPDATE_SHOT) {
        await page.screenshot({ path: PHONE_SHOT, fullPage: true });
      }

      expect(errors).toEqual([]);
    },
  );

  it("the server stops cleanly on SIGTERM", async () => {
    server.kill("SIGTERM");
    expect(await exited(server)).toBe(0);
    expect(serverOutput).toContain("cbfetch dashboard stopped (SIGTERM)");
  });
});
