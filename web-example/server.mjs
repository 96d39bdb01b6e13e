// cbfetch live dashboard: `npm start` at the repository root, or `node web-example/server.mjs`.
//
// Starts two flaky upstreams (A and B, each its own origin, so each gets its own breaker) and
// the page server. The page calls both upstreams through cbfetch + ky every 400 ms and lets
// you switch each upstream's behaviour: healthy, 503, slow, 429 with Retry-After, or down.
//
// Environment: PORT (page, default 5173; a taken port falls back to a free one), UPSTREAM_PORT
// (upstream A; B listens on the next port; default: free ports), EXIT_AFTER_MS or
// `--exit-after <ms>` (stop by itself, for smoke tests). Everything listens on 127.0.0.1 only.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const HOST = "127.0.0.1";
const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const MODES = ["healthy", "503", "slow", "retry-after", "down"];
const SLOW_MS = 2500;
const RETRY_AFTER_S = 5;

// The page imports the package by its public names; here they point at the sources, so the
// dashboard always runs the code in this checkout and needs no `npm run build`.
const ALIASES = {
  cbfetch: here("../src/index.ts"),
  "cbfetch/idb": here("../src/idb/index.ts"),
  "cbfetch/ky": here("../src/ky/index.ts"),
  "cbfetch/sw": here("../src/sw/index.ts"),
};

async function bundle(entry = "src/main.ts") {
  const result = await build({
    entryPoints: [here(entry)],
    bundle: true,
    format: "esm",
    target: "es2022",
    platform: "browser",
    alias: ALIASES,
    write: false,
    // Inline source maps make the browser's errors point at the TypeScript sources.
    sourcemap: "inline",
    logLevel: "silent",
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error(`esbuild produced no output for web-example/${entry}`);
  return file.text;
}

/** Resolves when `server` listens; rejects with the listen error (EADDRINUSE, EACCES …). */
function listen(server, port) {
  return new Promise((resolve, reject) => {
    const onError = (error) => reject(error);
    server.once("error", onError);
    server.listen(port, HOST, () => {
      server.off("error", onError);
      resolve(server.address().port);
    });
  });
}

/** Stops accepting, drops every open connection (keep-alive, slow answers), then resolves. */
function shut(server) {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

// CORS for a page on another origin: `*` is enough (no credentials), and Retry-After must be
// exposed or the page's fetch cannot read it, and then cbfetch could not honour it.
const CORS = {
  "access-control-allow-origin": "*",
  "access-control-expose-headers": "retry-after",
};

/**
 * A flaky upstream. `GET/POST /__mode` reads and switches its mode, `GET /__stats` says how
 * many calls reached it. Every other path is "the API", answered as the mode says; preflights
 * and the control paths are not counted, so `hits` is what a breaker could have saved.
 */
function createUpstream(name) {
  let mode = "healthy";
  let hits = 0;

  const send = (res, status, body, headers = {}) => {
    res.writeHead(status, {
      ...CORS,
      "content-type": "application/json",
      "cache-control": "no-store",
      ...headers,
    });
    res.end(JSON.stringify(body));
  };

  // A small picture per path under /img/ (the Service Worker mode's image strip: <img>, no-cors).
  const image = (res, path) => {
    const hue = [...path].reduce((sum, c) => sum + c.charCodeAt(0), 0) % 360;
    res.writeHead(200, { "content-type": "image/svg+xml", "cache-control": "no-store" });
    res.end(
      `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 40"><rect width="40" height="40" rx="6" fill="hsl(${hue} 60% 55%)"/></svg>`,
    );
  };

  const api = (req, res) => {
    hits++;
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path.startsWith("/img/") && (mode === "healthy" || mode === "slow")) {
      if (mode === "healthy") return image(res, path);
      const timer = setTimeout(() => image(res, path), SLOW_MS);
      res.once("close", () => clearTimeout(timer));
      return;
    }
    switch (mode) {
      case "healthy":
        return send(res, 200, { upstream: name, ok: true, hits });
      case "503":
        return send(res, 503, { upstream: name, error: "service unavailable" });
      case "retry-after":
        return send(
          res,
          429,
          { upstream: name, error: "too many requests" },
          { "retry-after": String(RETRY_AFTER_S) },
        );
      case "down":
        // No answer at all: the browser sees a network error (ERR_EMPTY_RESPONSE).
        return req.socket.destroy();
      case "slow": {
        const timer = setTimeout(
          () => send(res, 200, { upstream: name, ok: true, slow: true }),
          SLOW_MS,
        );
        // A client that gave up (cbfetch's timeout) must not leave a timer behind.
        res.once("close", () => clearTimeout(timer));
        return;
      }
    }
  };

  const control = async (req, res, path) => {
    if (path === "/__stats") return send(res, 200, { hits });
    if (req.method !== "POST") return send(res, 200, { mode });
    let body = "";
    for await (const chunk of req) body += chunk;
    let next;
    try {
      next = JSON.parse(body).mode;
    } catch {}
    if (!MODES.includes(next)) return send(res, 400, { error: `mode must be one of ${MODES}` });
    mode = next;
    send(res, 200, { mode });
  };

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (req.method === "OPTIONS") {
      res.writeHead(204, {
        ...CORS,
        "access-control-allow-methods": "GET, POST, OPTIONS",
        "access-control-allow-headers": req.headers["access-control-request-headers"] ?? "",
        "access-control-max-age": "600",
      });
      return res.end();
    }
    if (path === "/__mode" || path === "/__stats") {
      control(req, res, path).catch(() => res.destroy());
    } else api(req, res);
  });
  return server;
}

function createPageServer(files) {
  return createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const file = files[path];
    // no-store: a reload must fetch the page again (the point is to see the circuit survive it).
    const headers = { "cache-control": "no-store" };
    if (!file) {
      res.writeHead(404, { ...headers, "content-type": "text/plain" });
      return res.end("not found");
    }
    res.writeHead(200, { ...headers, "content-type": file.type });
    res.end(file.body);
  });
}

/**
 * Starts both upstreams and the page server.
 * @param {{ port?: number, upstreamPort?: number }} [options]
 * @returns {Promise<{ url: string, upstreams: { name: string, origin: string }[], close(): Promise<void> }>}
 */
export async function startDashboard({ port = 5173, upstreamPort = 0 } = {}) {
  const [app, worker, html, offline, css] = await Promise.all([
    bundle(),
    bundle("src/sw.js"),
    readFile(here("index.html"), "utf8"),
    readFile(here("offline.html"), "utf8"),
    readFile(here("style.css"), "utf8"),
  ]);

  const servers = [];
  const close = () => Promise.all(servers.map(shut)).then(() => {});
  try {
    const upstreams = [];
    for (const [i, name] of ["A", "B"].entries()) {
      const server = createUpstream(name);
      servers.push(server);
      const bound = await listen(server, upstreamPort === 0 ? 0 : upstreamPort + i);
      upstreams.push({ name, origin: `http://${HOST}:${bound}` });
    }

    const config = JSON.stringify({ upstreams });
    const page = createPageServer({
      "/": { type: "text/html; charset=utf-8", body: html },
      "/style.css": { type: "text/css; charset=utf-8", body: css },
      "/app.js": { type: "text/javascript; charset=utf-8", body: app },
      // The Service Worker mode's worker (src/sw.js), and the page it gives a refused navigation.
      "/sw.js": { type: "text/javascript; charset=utf-8", body: worker },
      "/offline.html": { type: "text/html; charset=utf-8", body: offline },
      "/config.json": { type: "application/json", body: config },
    });
    servers.push(page);
    let bound;
    try {
      bound = await listen(page, port);
    } catch (error) {
      // Another dev server on 5173 should not stop the demo: take any free port instead.
      if (error.code !== "EADDRINUSE" || port === 0) throw error;
      bound = await listen(page, 0);
    }
    return { url: `http://${HOST}:${bound}/`, upstreams, close };
  } catch (error) {
    await close();
    throw error;
  }
}

function exitAfterMs(argv, env) {
  const i = argv.indexOf("--exit-after");
  const raw = i >= 0 ? argv[i + 1] : env.EXIT_AFTER_MS;
  if (raw === undefined) return undefined;
  const ms = Number(raw);
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`--exit-after: not a duration: ${raw}`);
  return ms;
}

async function main() {
  const exitAfter = exitAfterMs(process.argv.slice(2), process.env);
  const dashboard = await startDashboard({
    port: Number(process.env.PORT ?? 5173),
    upstreamPort: Number(process.env.UPSTREAM_PORT ?? 0),
  });
  const upstreams = dashboard.upstreams.map((u) => `${u.name} ${u.origin}`).join(", ");
  console.log(`cbfetch dashboard: ${dashboard.url}  (Ctrl-C to stop)`);
  console.log(`  flaky upstreams: ${upstreams}`);

  let stopping = false;
  const stop = async (why) => {
    if (stopping) return;
    stopping = true;
    clearTimeout(timer);
    await dashboard.close();
    console.log(`cbfetch dashboard stopped (${why})`);
  };
  const timer =
    exitAfter === undefined ? undefined : setTimeout(() => stop("--exit-after"), exitAfter);
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
}

// Run as a script; importing the module (tests) only gets startDashboard.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
