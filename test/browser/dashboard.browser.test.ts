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
/** The README's screenshot: written when missing, or when this is set (to refresh it). */
const README_SHOT = join(root, "web-example/dashboard.png");
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
    { timeout: 90_000 },
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
      // The restored transition is marked as learnt, not caused by this tab's calls.
      expect((await timeline(page, "A"))[0]).toMatch(/closed → open .*shared$/);

      // A second tab of the same browser: open there too, from the first tab and IndexedDB.
      const second = await context.newPage();
      await second.goto(page.url());
      await second.waitForSelector("body[data-ready]");
      await waitForState(second, "A", "open", 2000);
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

      await mkdir(join(root, ".artifacts"), { recursive: true });
      await page.screenshot({ path: join(root, ".artifacts/dashboard.png") });
      const missing = await access(README_SHOT).then(
        () => false,
        () => true,
      );
      if (missing || UPDATE_SHOT) await page.screenshot({ path: README_SHOT });

      expect(errors).toEqual([]);
    },
  );

  it("the server stops cleanly on SIGTERM", async () => {
    server.kill("SIGTERM");
    expect(await exited(server)).toBe(0);
    expect(serverOutput).toContain("cbfetch dashboard stopped (SIGTERM)");
  });
});
