import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build, transform } from "esbuild";

// The origins of the cbfetch/sw tests, each a real HTTP server on 127.0.0.1 (another port is
// another origin): the site (its page, its Service Worker, an offline page, a page that
// fails), an API and an image host. Each counts the requests that reached it.

const root = fileURLToPath(new URL("../../", import.meta.url));
const WORKER = fileURLToPath(new URL("./sw.worker.ts", import.meta.url));
const CORE_WORKER = fileURLToPath(new URL("./sw-core.worker.ts", import.meta.url));
const WORKBOX_WORKER = fileURLToPath(new URL("./sw-workbox.worker.ts", import.meta.url));
const PAGE = fileURLToPath(new URL("./sw.page.ts", import.meta.url));
const IDB_KEYVAL = join(root, "node_modules/idb-keyval/dist/index.js");

/** What an origin does: answer, answer 503, or drop the connection without a byte. */
export type Mode = "ok" | "fail" | "down";

export interface Origin {
  readonly origin: string;
  mode: Mode;
  /** How long an answer waits, in ms. */
  delayMs: number;
  /** Requests that reached it (control paths excluded), by path. */
  readonly hits: string[];
  /** Stops listening and drops every connection: nothing answers on its port any more. */
  close(): Promise<void>;
}

const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=",
  "base64",
);

/** Starts a server on a free port of 127.0.0.1 whose answers `route` decides. */
async function origin(
  route: (req: IncomingMessage, res: ServerResponse, self: Origin) => void,
): Promise<Origin> {
  const server: Server = createServer((req, res) => route(req, res, self));
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  const self: Origin = {
    origin: `http://127.0.0.1:${port}`,
    mode: "ok",
    delayMs: 0,
    hits: [],
    close: () => {
      server.closeAllConnections();
      return new Promise((done) => server.close(() => done()));
    },
  };
  return self;
}

/** Answers as the origin's mode says (the mode when the request arrived), after its delay. */
function upstream(
  self: Origin,
  req: IncomingMessage,
  res: ServerResponse,
  ok: () => void,
  failing = "failing",
) {
  self.hits.push(req.url ?? "");
  const { mode, delayMs } = self;
  const answer = () => {
    if (req.socket.destroyed) return;
    if (mode === "down") req.socket.destroy();
    else if (mode === "fail") {
      res.writeHead(503, { "access-control-allow-origin": "*", "cache-control": "no-store" });
      res.end(failing);
    } else ok();
  };
  if (delayMs > 0) setTimeout(answer, delayMs);
  else answer();
}

/** The API: JSON for everyone (CORS), `Retry-After` readable. */
export const startApi = () =>
  origin((req, res, self) =>
    upstream(self, req, res, () => {
      res.writeHead(200, {
        "content-type": "application/json",
        "cache-control": "no-store",
        "access-control-allow-origin": "*",
      });
      res.end('{"ok":true}');
    }),
  );

/** The image host: a 1×1 PNG for any path, no CORS (pages load it with <img>: no-cors). */
export const startImages = () =>
  origin((req, res, self) =>
    upstream(self, req, res, () => {
      res.writeHead(200, { "content-type": "image/png", "cache-control": "no-store" });
      res.end(PNG);
    }),
  );

const HTML = (body: string, script = true) => `<!doctype html>
<html><head><meta charset="utf-8" /><link rel="icon" href="data:," /><title>cbfetch/sw</title>
${script ? '<script type="module" src="/app.js"></script>' : ""}</head><body>${body}</body></html>
`;
/** The site's offline page (README: what a refused navigation gets). */
export const OFFLINE_HTML = HTML(
  "<h1>Offline</h1><p>cbfetch: this site is unreachable.</p>",
  false,
);

export interface Site extends Origin {
  /** Every script the worker was served as, by path (to check what reached the worker). */
  readonly workerScripts: Map<string, string>;
  /** The bundled worker's output files (code splitting on): one means no chunk. */
  readonly bundledFiles: string[];
}

/**
 * The site: `/` (the page, bundled), `/sw.js` (the worker bundled by esbuild with code
 * splitting, as an app's bundler would), `/unbundled/...` (the worker's modules as they are,
 * each TypeScript file only stripped of its types: a module worker the browser assembles),
 * `/core-sw.js` (a worker calling createCbFetch itself, bundled the same way), `/workbox-sw.js`
 * (a site routing with Workbox, its plugin on handleFetch's breakers), `/offline.html`,
 * and `/flaky` (a page that fails as the mode says).
 */
export async function startSite(): Promise<Site> {
  const outdir = resolve(tmpdir(), "cbfetch-sw-bundle"); // nothing is written
  const bundleWorker = (name: string, entry: string) =>
    build({
      entryPoints: { [name]: entry },
      bundle: true,
      splitting: true,
      format: "esm",
      outdir,
      chunkNames: `${name}-chunk-[hash]`,
      // Workbox's production build (its development build logs every route to the console).
      define: { "process.env.NODE_ENV": '"production"' },
      write: false,
      logLevel: "silent",
    });
  const [page, worker, coreWorker, workboxWorker] = await Promise.all([
    build({ entryPoints: [PAGE], bundle: true, format: "esm", write: false, logLevel: "silent" }),
    bundleWorker("sw", WORKER),
    bundleWorker("core-sw", CORE_WORKER),
    bundleWorker("workbox-sw", WORKBOX_WORKER),
  ]);
  const served = (output: typeof worker) =>
    output.outputFiles.map((f): [string, string] => [`/${relative(outdir, f.path)}`, f.text]);
  const bundledFiles = served(worker).map(([path]) => path);
  const files = new Map([...served(worker), ...served(coreWorker), ...served(workboxWorker)]);
  const workerScripts = new Map<string, string>();
  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer) => {
    // The unbundled worker's script lives below /unbundled/: it may still control the site.
    const allowed = { "service-worker-allowed": "/" };
    res.writeHead(status, { "content-type": type, "cache-control": "no-store", ...allowed });
    res.end(body);
  };
  const js = "text/javascript; charset=utf-8";
  const html = "text/html; charset=utf-8";

  /** A module of the unbundled worker: its TypeScript source without types, bare names mapped. */
  async function unbundled(path: string): Promise<string | undefined> {
    if (path === "/unbundled/node_modules/idb-keyval/dist/index.js") {
      return readFile(IDB_KEYVAL, "utf8");
    }
    const file = resolve(root, path.slice("/unbundled/".length).replace(/\.js$/, ".ts"));
    if (!file.startsWith(root) || !/\/(src|test\/browser)\//.test(file)) return undefined;
    const source = await readFile(file, "utf8").catch(() => undefined);
    if (source === undefined) return undefined;
    const { code } = await transform(source, { loader: "ts", format: "esm", target: "es2022" });
    // What a dev server does for a browser: a bare package name becomes a path.
    return code.replace(
      /from "idb-keyval"/g,
      'from "/unbundled/node_modules/idb-keyval/dist/index.js"',
    );
  }

  const site = await origin((req, res, self) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path === "/") return send(res, 200, html, HTML(""));
    if (path === "/app.js") return send(res, 200, js, page.outputFiles[0]!.text);
    if (path === "/offline.html") return send(res, 200, html, OFFLINE_HTML);
    if (path === "/flaky") {
      // HTML with an icon either way: a text page would make the browser ask for /favicon.ico.
      const page = (text: string) => HTML(`<h1>${text}</h1>`, false);
      return upstream(self, req, res, () => send(res, 200, html, page("flaky page")), page("503"));
    }
    if (path.startsWith("/unbundled/")) {
      void unbundled(path).then((code) => {
        if (code === undefined) return send(res, 404, "text/plain", "not found");
        workerScripts.set(path, code);
        send(res, 200, js, code);
      });
      return;
    }
    const file = files.get(path);
    if (file !== undefined) {
      workerScripts.set(path, file);
      return send(res, 200, js, file);
    }
    send(res, 404, "text/plain", "not found");
  });
  return Object.assign(site, { workerScripts, bundledFiles });
}
