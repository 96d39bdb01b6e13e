// Bundle sizes, min+gzip, measured the way DESIGN §6 counts them. Shared by the bench
// (bench/sizes.mjs) and usable by the package check; `node scripts/sizes.mjs` prints them.
//
// Method: each entry is bundled by esbuild (ESM, minified, platform-neutral, code splitting
// on, as an app bundler does), each resulting chunk gzipped at level 9 on its own (as served).
// Package dependencies (idb-keyval, ky, cloudflare:workers) stay external. The core is what
// loads with `import "cbfetch"`; the part it loads with `import()` only when `store` or `sync`
// is set is reported beside it. A subpath is built together with the core and measured as the
// chunks it loads that the core does not: what it adds beside the core and its dependency.
// Dependencies and peers are measured by bundling them on their own.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import ts from "typescript";

export const ROOT = resolve(import.meta.dirname, "..");

/** DESIGN §6 targets, bytes min+gzip: the core, and each subpath beside its dependency. */
export const TARGETS = {
  ".": 4096,
  "./idb": 2048,
  "./ky": 2048,
  "./cloudflare": 2048,
  "./cloudflare/object": 2048,
  "./hono": 2048,
  "./otel": 2048,
  "./log": 2048,
  "./redis": 2048,
};

/** The package each subpath builds on. */
export const DEPENDENCIES = {
  "./idb": "idb-keyval",
  "./ky": "ky",
  "./hono": "hono",
  "./otel": "@opentelemetry/api",
};

/** How a whole package is imported when it is measured on its own: every export it has. */
const WHOLE = {
  "idb-keyval": `export * from "idb-keyval";`,
  ky: `export * from "ky"; export { default } from "ky";`,
  hono: `export * from "hono";`,
  "@opentelemetry/api": `export * from "@opentelemetry/api";`,
  opossum: `export { default } from "opossum";`,
  cockatiel: `export * from "cockatiel";`,
};
// Packages are bundled as a web app would; opossum needs Node's `events`, left out.
const BROWSER = { platform: "browser", external: ["events"] };

/** Minified and min+gzip bytes of a built file's contents. */
function measure(contents) {
  return { minified: contents.length, gzip: gzipSync(contents, { level: 9 }).length };
}

async function bundle(options) {
  const result = await build({
    bundle: true,
    minify: true,
    format: "esm",
    write: false,
    logLevel: "silent",
    metafile: true,
    ...options,
  });
  const [output] = Object.values(result.metafile.outputs);
  return { ...measure(result.outputFiles[0].contents), inputs: output.inputs };
}

/** Bundles a snippet of code resolved from the repository root (for packages). */
function bundleSnippet(contents, options = {}) {
  return bundle({ stdin: { contents, resolveDir: ROOT, loader: "js" }, ...options });
}

/** The built file of a package entry (".", "./idb", …), from package.json's exports. */
function entryFile(entry, root) {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  return join(root, pkg.exports[entry].default);
}

/**
 * Builds entries (`{ name: file }`) together with code splitting, as an app bundler would, and
 * returns for each entry its chunks: `eager` (the entry's chunk and every chunk it imports
 * statically: what loads with it) and `lazy` (what it only imports with `import()`). Each
 * chunk is `{ path, minified, gzip, inputs }`, gzipped on its own as it would be served.
 */
async function splitBundle(entryPoints, { root = ROOT, inlineDependencies = false } = {}) {
  const outdir = join(root, ".sizes-out"); // never written: write is false
  const result = await build({
    entryPoints,
    outdir,
    absWorkingDir: root,
    bundle: true,
    minify: true,
    splitting: true,
    format: "esm",
    platform: "neutral",
    write: false,
    logLevel: "silent",
    metafile: true,
    external: ["cloudflare:*"],
    packages: inlineDependencies ? undefined : "external",
  });
  const contents = new Map(result.outputFiles.map((file) => [file.path, file.contents]));
  const chunks = new Map();
  for (const [key, output] of Object.entries(result.metafile.outputs)) {
    const path = resolve(root, key);
    chunks.set(path, { path, ...measure(contents.get(path)), output });
  }
  const reach = (starts, kinds) => {
    const seen = new Set();
    const visit = (path) => {
      if (seen.has(path)) return;
      seen.add(path);
      for (const { path: next, kind, external } of chunks.get(path).output.imports) {
        if (!external && kinds.includes(kind)) visit(resolve(root, next));
      }
    };
    for (const start of starts) visit(start);
    return seen;
  };
  const byEntry = {};
  for (const [name] of Object.entries(entryPoints)) {
    const [start] = [...chunks.values()].filter(
      (c) => c.output.entryPoint !== undefined && basename(c.path, ".js") === name,
    );
    const eager = reach([start.path], ["import-statement"]);
    const all = reach([start.path], ["import-statement", "dynamic-import"]);
    const lazy = [...all].filter((p) => !eager.has(p)).map((p) => chunks.get(p));
    // Each module loaded with import(), with the chunks it needs that are not already loaded:
    // what an app that uses that capability downloads on top of the core.
    const parts = lazy
      .filter((c) => c.output.entryPoint !== undefined)
      .map((c) => {
        const needs = [...reach([c.path], ["import-statement"])].filter((p) => !eager.has(p));
        return {
          name: basename(c.output.entryPoint, ".js"),
          ...total(needs.map((p) => chunks.get(p))),
        };
      });
    byEntry[name] = { eager: [...eager].map((p) => chunks.get(p)), lazy, parts };
  }
  return byEntry;
}

/** The sum of chunk sizes: `{ minified, gzip }`. */
function total(chunks) {
  return {
    minified: chunks.reduce((sum, c) => sum + c.minified, 0),
    gzip: chunks.reduce((sum, c) => sum + c.gzip, 0),
  };
}

/**
 * One entry of the package as users bundle it: `{ entry, name, minified, gzip, lazy, parts }`
 * in bytes. The core counts what loads with it; `lazy` is all it loads only on demand, and
 * `parts` the same per module it imports with `import()` (`shared-state`: store and sync;
 * `bulkhead`: `maxConcurrent`; `timeout`: `timeoutMs`; `fallback`: `fallback` or
 * `fallbackOrigins`; `meter`: `slowCallMs`), each with the chunks it needs. A subpath counts what it adds beside the core: its chunks that the core does not
 * already load (code it shares with the core's lazy part counts here too). With
 * `inlineDependencies`, its package dependencies are bundled in.
 */
export async function entrySize(entry, { root = ROOT, inlineDependencies = false } = {}) {
  const name = `cbfetch${entry.slice(1)}`;
  const points = { core: entryFile(".", root) };
  if (entry !== ".") points.subpath = entryFile(entry, root);
  const built = await splitBundle(points, { root, inlineDependencies });
  if (entry === ".") {
    const { eager, lazy, parts } = built.core;
    return { entry, name, ...total(eager), lazy: total(lazy), parts };
  }
  const core = new Set(built.core.eager.map((c) => c.path));
  const own = built.subpath.eager.filter((c) => !core.has(c.path));
  return { entry, name, ...total(own), lazy: total([]), parts: [] };
}

/**
 * Where the core's minified bytes come from: `[{ file, minified }]`, largest first (source
 * files relative to the root, before gzip: a guide to what to cut, not exact gzip shares).
 */
export async function entryBreakdown(entry = ".", { root = ROOT } = {}) {
  const { core } = await splitBundle({ core: entryFile(entry, root) }, { root });
  return core.eager
    .flatMap((chunk) => Object.entries(chunk.output.inputs))
    .map(([file, { bytesInOutput }]) => ({ file, minified: bytesInOutput }))
    .sort((a, b) => b.minified - a.minified);
}

/**
 * What DESIGN §6 calls the core: the code an app downloads that only calls `createCbFetch()`
 * (no store, sync or retry), tree-shaken and split as an app bundler would: its eager chunks.
 * The whole entry (`entrySize(".")`) also counts every other export.
 */
export async function appCoreSize({ root = ROOT } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "cbfetch-app-"));
  try {
    const app = writeApp(dir, root);
    const built = await splitBundle({ app }, { root });
    return total(built.app.eager);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The same app through a bundler that inlines `import()` (esbuild without splitting, as
 * wrangler bundles a Worker): one file holding the core and every part it can load.
 */
export async function appCoreInlinedSize({ root = ROOT } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "cbfetch-app-"));
  try {
    const app = writeApp(dir, root);
    const { minified, gzip } = await bundle({
      entryPoints: [app],
      absWorkingDir: root,
      platform: "neutral",
      packages: "external",
      external: ["cloudflare:*"],
    });
    return { minified, gzip };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An app that only calls `createCbFetch()`, written into `dir`; returns its path. */
function writeApp(dir, root) {
  const app = join(dir, "app.js");
  writeFileSync(
    app,
    `import { createCbFetch } from ${JSON.stringify(entryFile(".", root))};\nexport const cb = createCbFetch();\n`,
  );
  return app;
}

/**
 * A module Service Worker using `cbfetch/sw` as its README shows it: `handleFetch` with
 * `idbStore()`, bundled into one file as a worker is served (esbuild, minified; idb-keyval
 * left out, measured with the dependencies). `total` is the whole worker; `besideCore` what it
 * adds to the core an app downloads (`appCoreSize`): the store and sync code, the network
 * check, timeouts and the failure-rate policy it bundles (a Service Worker may not load them
 * with `import()`), and its own. Issue 28's target: 4096 B beside the core.
 */
export async function serviceWorkerSize({ root = ROOT } = {}) {
  const file = (entry) => JSON.stringify(entryFile(entry, root));
  const worker = `import { handleFetch } from ${file("./sw")};
import { idbStore } from ${file("./idb")};
self.addEventListener("fetch", handleFetch({ store: idbStore() }));
`;
  const total = await bundleSnippet(worker, { platform: "neutral", packages: "external" });
  const core = await appCoreSize({ root });
  return {
    total: { minified: total.minified, gzip: total.gzip },
    besideCore: { minified: total.minified - core.minified, gzip: total.gzip - core.gzip },
  };
}

/** Every entry of TARGETS, in order. */
export async function entrySizes(options) {
  const sizes = [];
  for (const entry of Object.keys(TARGETS)) sizes.push(await entrySize(entry, options));
  return sizes;
}

/**
 * A dependency's own size: the whole package (`import * as`), and the part a subpath uses
 * (the subpath with the dependency inlined, minus the subpath alone; 0 if it imports nothing).
 */
export async function dependencySize(entry, options) {
  const name = DEPENDENCIES[entry];
  const { minified, gzip } = await bundleSnippet(WHOLE[name], BROWSER);
  const alone = await entrySize(entry, options);
  const inlined = await entrySize(entry, { ...options, inlineDependencies: true });
  return {
    name,
    entry,
    whole: { minified, gzip },
    used: { minified: inlined.minified - alone.minified, gzip: inlined.gzip - alone.gzip },
  };
}

/** The other circuit breakers, bundled the same way, for reference. */
export async function peerSizes() {
  const peers = [
    ["opossum (whole package; Node's events left out)", WHOLE.opossum],
    ["cockatiel (whole package)", WHOLE.cockatiel],
    [
      "cockatiel (circuitBreaker, handleAll, ConsecutiveBreaker only)",
      `export { circuitBreaker, handleAll, ConsecutiveBreaker } from "cockatiel";`,
    ],
  ];
  const sizes = [];
  for (const [name, snippet] of peers) {
    const { minified, gzip } = await bundleSnippet(snippet, BROWSER);
    sizes.push({ name, minified, gzip });
  }
  return sizes;
}

/** The package's entries the worker-example imports, and their built files. */
const WORKER_ENTRIES = {
  cbfetch: "dist/index.js",
  "cbfetch/cloudflare": "dist/cloudflare/index.js",
  "cbfetch/cloudflare/object": "dist/cloudflare/object.js",
};

/**
 * The worker-example as wrangler bundles it for deployment: an offline dry run
 * (`wrangler deploy --dry-run --minify`), with telemetry and network look-ups off. The example
 * stands alone (it installs cbfetch from npm), so it is bundled here with a generated copy of
 * its wrangler config whose `alias` points `cbfetch` at this repository's build (`npm run
 * build` first). (wrangler 4.86's `deploy --alias` flag is parsed but not applied.)
 */
export function workerSize({ root = ROOT } = {}) {
  const work = mkdtempSync(join(tmpdir(), "cbfetch-worker-"));
  try {
    const outdir = join(work, "out");
    const example = join(root, "worker-example");
    const { config, error } = ts.parseConfigFileTextToJson(
      "wrangler.jsonc",
      readFileSync(join(example, "wrangler.jsonc"), "utf8"),
    );
    if (error) throw new Error(`worker-example/wrangler.jsonc: ${error.messageText}`);
    delete config.$schema;
    config.main = join(example, config.main);
    config.alias = Object.fromEntries(
      Object.entries(WORKER_ENTRIES).map(([name, file]) => [name, join(root, file)]),
    );
    const configPath = join(work, "wrangler.json");
    writeFileSync(configPath, JSON.stringify(config));
    execFileSync(
      join(root, "node_modules", ".bin", "wrangler"),
      ["deploy", "--dry-run", "--minify", "--outdir", outdir, "--config", configPath],
      {
        cwd: work,
        stdio: "ignore",
        env: {
          ...process.env,
          CLOUDFLARE_CF_FETCH_ENABLED: "false",
          WRANGLER_SEND_METRICS: "false",
          WRANGLER_HIDE_BANNER: "true",
          XDG_CONFIG_HOME: join(work, "config"),
        },
      },
    );
    const contents = readFileSync(join(outdir, "index.js"));
    return { ...measure(contents), text: contents.toString() };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === import.meta.filename) {
  for (const size of await entrySizes())
    console.log(`${size.name}: ${size.minified} B min, ${size.gzip} B min+gzip`);
  console.log("largest modules of the core:");
  for (const { file, minified } of (await entryBreakdown(".")).slice(0, 8))
    console.log(`  ${file}: ${minified} B min`);
  for (const entry of Object.keys(DEPENDENCIES)) {
    const dep = await dependencySize(entry);
    console.log(
      `${dep.name}: ${dep.whole.gzip} B min+gzip whole, ${dep.used.gzip} B as cbfetch${entry.slice(1)} uses it`,
    );
  }
  for (const peer of await peerSizes()) console.log(`${peer.name}: ${peer.gzip} B min+gzip`);
  const sw = await serviceWorkerSize();
  console.log(
    `a Service Worker (handleFetch + idbStore): ${sw.total.gzip} B min+gzip, ${sw.besideCore.gzip} B beside the core`,
  );
  const worker = workerSize();
  console.log(`worker-example: ${worker.minified} B min, ${worker.gzip} B min+gzip`);
}
