import { access, constants, mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, relative, resolve as resolvePath } from "node:path";
import { build } from "esbuild";
import { type BrowserContext, chromium, type ConsoleMessage, type Page } from "playwright-core";

/**
 * A real-browser test harness: a loopback HTTP server that serves a page running `entry`
 * (bundled for the browser) next to a switchable upstream under `/api/*`, and Debian's
 * Chromium driven by playwright-core in a fresh profile. Page and API share one origin, so
 * the page needs no CORS and its storage (IndexedDB) is scoped to that origin.
 */

/** What `/api/*` does: answer 200, answer 503, or drop the connection without an answer. */
export type UpstreamMode = "ok" | "fail" | "down";

export interface Upstream {
  /** @default "ok" */
  mode: UpstreamMode;
  /**
   * Every `/api/*` request that reached the server, whatever the mode. In `"down"` mode one
   * fetch can count up to 3: Chromium retries a GET whose connection closed without a byte.
   */
  hits: number;
  /** The paths (with query) of those requests, in order. */
  readonly paths: string[];
  /**
   * How long `/api/*` waits before it answers (or drops the connection), in ms. A request is
   * counted in `hits` when it arrives, so a slow upstream keeps a call in flight, visibly.
   * @default 0
   */
  delayMs: number;
}

export interface Harness {
  /** `http://127.0.0.1:<port>`: the page and the upstream. */
  readonly origin: string;
  readonly context: BrowserContext;
  /** The first page, already loaded. */
  readonly page: Page;
  readonly upstream: Upstream;
  /**
   * Uncaught exceptions and `console.error`s of every page of the context. The browser's own
   * "Failed to load resource" lines for `/api/*` are left out: the upstream fails on purpose.
   */
  readonly errors: string[];
  /** Milliseconds spent bundling and launching Chromium. */
  readonly timings: { bundleMs: number; launchMs: number };
  /**
   * Every request the server received (page, scripts and `/api/*`), in order of arrival, with
   * its path (and query) and its arrival time in epoch ms (`performance.timeOrigin +
   * performance.now()` of the test process).
   */
  readonly requests: ServedRequest[];
  /**
   * The scripts the server serves: `/app.js` (the entry) and, with `splitting`, each chunk by
   * its file name, with the source module it was built for when it is an entry of its own (a
   * module loaded with `import()` gets a chunk whose `entryPoint` is that module).
   */
  readonly scripts: readonly ServedScript[];
  /** Opens another page of the same context (same profile, same storage) at `path` (default `/`). */
  newPage(path?: string): Promise<Page>;
  /** Closes Chromium, the server and every connection, and removes the profile directory. */
  close(): Promise<void>;
}

export interface ServedRequest {
  method: string;
  path: string;
  at: number;
}

export interface ServedScript {
  /** Where the server serves it, e.g. `/app.js` or `/chunk-ABCD1234.js`. */
  path: string;
  /** The source module (relative to the working directory) this output was built for, if any. */
  entryPoint: string | undefined;
}

export interface HarnessOptions {
  /** The page script (TypeScript), bundled once at startup. */
  entry: string;
  /**
   * Bundle as an app bundler would for a site: esbuild code splitting, so every `import()`
   * (cbfetch's store and sync code) becomes a chunk of its own that the page requests when the
   * import runs, over the network, after `/app.js`.
   * @default false (one self-contained `/app.js`)
   */
  splitting?: boolean;
  /** @default process.env.CHROMIUM_PATH, else /usr/bin/chromium */
  executablePath?: string;
  /**
   * More documents the server serves, by path (e.g. `/away`): HTML of their own, without the
   * page script (somewhere to navigate to, or a control page).
   */
  pages?: Record<string, string>;
  /**
   * Lets Chromium use its back/forward cache. playwright-core launches it with
   * `--disable-back-forward-cache` (so that it can intercept every `goBack()`): this drops that
   * flag. A page restored from the cache fires no `load`: use `goBack({ waitUntil: "commit" })`.
   * @default false
   */
  bfcache?: boolean;
  /**
   * The `cache-control` of the documents (`/` and `pages`); scripts and `/api/*` always get
   * `no-store`. Chromium keeps a `no-store` document out of its back/forward cache once its
   * scripts fetched a `no-store` resource (`JsNetworkRequestReceivedCacheControlNoStoreResource`):
   * a test of the cache serves its documents with `no-cache` (a reload still asks the server).
   * @default "no-store"
   */
  documentCacheControl?: string;
}

/** Flags from /work/shared/TOOLCHAIN.md: no sandbox (root in a container), and no network
 * beyond loopback (Chromium otherwise looks up Google hosts on its own). */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
];

// The empty data: icon stops the browser asking for /favicon.ico (a 404 logs a console error).
const HTML = `<!doctype html>
<html>
  <head>
    <meta charset="utf-8" />
    <link rel="icon" href="data:," />
    <title>cbfetch e2e</title>
    <script type="module" src="/app.js"></script>
  </head>
  <body></body>
</html>
`;

/** The scripts to serve: path → JavaScript, with what each was built for. */
type Bundle = Map<string, { text: string; entryPoint: string | undefined }>;

async function bundle(entry: string, splitting: boolean): Promise<Bundle> {
  // Nothing is written: outdir only names the files (and their relative imports).
  const outdir = resolvePath(tmpdir(), "cbfetch-e2e-bundle");
  const absWorkingDir = process.cwd();
  const result = await build({
    entryPoints: { app: entry },
    bundle: true,
    format: "esm",
    target: "es2022",
    platform: "browser",
    write: false,
    outdir,
    splitting,
    entryNames: "[name]",
    chunkNames: "chunk-[hash]",
    metafile: true,
    absWorkingDir,
    // Inline source maps make page errors point at the TypeScript source.
    sourcemap: "inline",
    logLevel: "silent",
  });
  const entryPoints = new Map(
    Object.entries(result.metafile.outputs).map(([out, meta]) => [
      resolvePath(absWorkingDir, out),
      meta.entryPoint,
    ]),
  );
  const files: Bundle = new Map();
  for (const file of result.outputFiles) {
    const path = `/${relative(outdir, file.path).split("\\").join("/")}`;
    files.set(path, { text: file.text, entryPoint: entryPoints.get(file.path) });
  }
  if (!files.has("/app.js")) throw new Error(`esbuild produced no /app.js for ${entry}`);
  return files;
}

async function checkExecutable(path: string): Promise<void> {
  try {
    await access(path, constants.X_OK);
  } catch {
    throw new Error(
      `Debian's chromium is needed at ${path}: apt-get install -y chromium, or set CHROMIUM_PATH`,
    );
  }
}

function startServer(
  scripts: Bundle,
  upstream: Upstream,
  requests: ServedRequest[],
  pages: Record<string, string>,
  documentCacheControl: string,
) {
  // no-store: a reload must fetch the page again, never answer it from cache.
  const send = (
    res: ServerResponse,
    status: number,
    type: string,
    body: string,
    cache = "no-store",
  ) => {
    res.writeHead(status, { "content-type": type, "cache-control": cache });
    res.end(body);
  };
  const answer = (req: IncomingMessage, res: ServerResponse, mode: UpstreamMode) => {
    // close() may have dropped the connection while a delayed answer waited.
    if (req.socket.destroyed) return;
    if (mode === "down") req.socket.destroy();
    else if (mode === "fail") send(res, 503, "text/plain", "upstream failing");
    else send(res, 200, "text/plain", "ok");
  };
  const api = (req: IncomingMessage, res: ServerResponse) => {
    upstream.hits++;
    upstream.paths.push(req.url ?? "");
    // The mode and delay in force when the request arrived decide its answer.
    const { mode, delayMs } = upstream;
    if (delayMs > 0) setTimeout(() => answer(req, res, mode), delayMs);
    else answer(req, res, mode);
  };
  const server = createServer((req, res) => {
    const at = performance.timeOrigin + performance.now();
    requests.push({ method: req.method ?? "", path: req.url ?? "", at });
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const script = scripts.get(path);
    if (path.startsWith("/api/")) api(req, res);
    else if (path === "/") send(res, 200, "text/html; charset=utf-8", HTML, documentCacheControl);
    else if (script) send(res, 200, "text/javascript; charset=utf-8", script.text);
    else if (Object.hasOwn(pages, path)) {
      send(res, 200, "text/html; charset=utf-8", pages[path]!, documentCacheControl);
    } else send(res, 404, "text/plain", "not found");
  });
  return server;
}

export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const executablePath = options.executablePath ?? process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
  await checkExecutable(executablePath);

  let t = performance.now();
  const scripts = await bundle(options.entry, options.splitting ?? false);
  const bundleMs = performance.now() - t;

  const upstream: Upstream = { mode: "ok", hits: 0, paths: [], delayMs: 0 };
  const requests: ServedRequest[] = [];
  const server = startServer(
    scripts,
    upstream,
    requests,
    options.pages ?? {},
    options.documentCacheControl ?? "no-store",
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;

  let profile: string | undefined;
  let context: BrowserContext | undefined;
  // Safe to call twice; the server and the profile go even if closing Chromium throws.
  const close = async () => {
    try {
      await context?.close();
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // Chromium may still be flushing the profile for a moment after it exits.
      if (profile) await rm(profile, { recursive: true, force: true, maxRetries: 5 });
    }
  };

  try {
    profile = await mkdtemp(join(tmpdir(), "cbfetch-chromium-"));
    t = performance.now();
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: CHROMIUM_ARGS,
      ...(options.bfcache ? { ignoreDefaultArgs: ["--disable-back-forward-cache"] } : {}),
    });
    context = ctx;
    const launchMs = performance.now() - t;

    const errors: string[] = [];
    const watch = (page: Page) => {
      page.on("pageerror", (error) => errors.push(`pageerror: ${error.stack ?? error.message}`));
      page.on("console", (message: ConsoleMessage) => {
        if (message.type() !== "error") return;
        const { url } = message.location();
        const expected =
          message.text().startsWith("Failed to load resource") &&
          new URL(url, origin).pathname.startsWith("/api/");
        if (!expected) errors.push(`console.error: ${message.text()} (${url})`);
      });
    };
    ctx.on("page", watch);
    // A persistent context opens with one blank page (no "page" event for it): use it.
    const initial = ctx.pages()[0];
    if (initial) watch(initial);
    const first = initial ?? (await ctx.newPage());
    await first.goto(origin);

    const newPage = async (path = "/") => {
      const page = await ctx.newPage();
      await page.goto(new URL(path, origin).href);
      return page;
    };

    return {
      origin,
      context: ctx,
      page: first,
      upstream,
      errors,
      timings: { bundleMs, launchMs },
      requests,
      scripts: [...scripts].map(([path, { entryPoint }]) => ({ path, entryPoint })),
      newPage,
      close,
    };
  } catch (error) {
    // Nothing may outlive a failed start: no browser, no listening server, no temp dir.
    await close().catch(() => {});
    throw error;
  }
}
