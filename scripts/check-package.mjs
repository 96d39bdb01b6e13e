// Checks the package as a user meets it: `npm pack`, publint and arethetypeswrong on the
// tarball, an install into an empty folder, a real import from Node (and a type check of a
// TypeScript consumer), and the size budget. Run after `npm run build` (npm test does both).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  appCoreInlinedSize,
  appCoreSize,
  entrySizes,
  serviceWorkerSize,
  TARGETS,
  workerSize,
} from "./sizes.mjs";

const root = resolve(import.meta.dirname, "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const run = (cmd, args, cwd = root) =>
  execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });

/**
 * Size ceilings in bytes, min+gzip, dependencies excluded: what each measures today, so nothing
 * grows unnoticed; DESIGN §6's targets are printed beside them (README "Performance" says by how
 * much the core misses its own, and why). Subpaths: DESIGN's 2 KB. `LAZY_BUDGETS` are the parts
 * the core loads only on demand, each with what it needs: DESIGN's 2 KB, but for the store and
 * sync code (`shared-state`): the causal merge, its validation against poisoned records, the
 * write pipeline (timeouts, per-key backoff carried by the next flush, pruning) and probe leases
 * that read the record (DESIGN §3) take it to about 3.5 KB.
 */
// This round's growth, ceilings just above today's sizes: the network judge in the core (issue
// 22: a failure must not download code), the caller's-mistake checks (23), the refusal base and
// guards (24, 25), the throttle's option, error and 503 kinds (26: core +240 B, middlewares
// +125 B), the stores' push hook (27: +15 B inlined) and the instance taking its parts table
// (28). A slimming pass found no cut that survives module-level code splitting (moving an error
// class to its lazy part splits errors.js into a chunk of its own: +190 B); the README says by
// how much each DESIGN target is missed.
const BUDGETS = {
  ".": 10_740,
  "./idb": 2048,
  "./ky": 2048,
  "./cloudflare": 2110,
  "./cloudflare/object": 2048,
  "./hono": 2170,
  "./otel": 2048,
  "./log": 2048,
  // Issue 27: the Lua script (the §3 merge, the probe lease, expiry and the push, one atomic
  // step, ~640 B min+gzip of it) and three client adapters (node-redis, ioredis, Upstash's
  // REST client) take cbfetch/redis past DESIGN's 2 KB, by about 230 B; options checked as
  // the core's are (unknown names, timer range, kinds named, never a function's source) 180 B
  // more.
  "./redis": 2470,
};
/**
 * DESIGN §6's core proper: what an app that only calls `createCbFetch()` downloads (no store,
 * sync or retry), tree-shaken, with a splitting bundler (DESIGN's target 6000 B), and with one
 * that inlines `import()` (esbuild's default, wrangler; DESIGN's target 10 000 B). Issue 22 put
 * the network judge in the core (what a failure needs is there before it: a dead uplink must
 * not make a page download code, and a Service Worker may not use `import()`).
 */
const APP_CORE_BUDGET = 9240;
const APP_INLINED_BUDGET = 16_680;
/**
 * Issue 28: a Service Worker using `cbfetch/sw` (`handleFetch` + `idbStore()`), beside the core:
 * the issue's target is 4096 B; the store and sync code it must bundle (no `import()` in a
 * Service Worker) is about 3.5 KB by itself (`shared-state` above), so today it measures ~5.5 KB.
 */
const SW_BUDGET = 5600;
const LAZY_BUDGETS = {
  "shared-state": 3600,
  network: 2048,
  "failure-rate": 2048,
  throttle: 2048,
  channel: 2048,
  bulkhead: 2048,
  timeout: 2048,
  fallback: 2048,
  meter: 2048,
  // Issue 16: the retry loop and its per-key budget (`retry` or `totalTimeoutMs`); `keyOf`'s
  // code. `retry` counts with what it needs that the core does not load: the budget. It loads
  // `timeoutMs`'s Timeout (for `totalTimeoutMs`) with import(), measured as its own part.
  retry: 2048,
  "key-of": 2048,
};

let passed = 0;
let failed = 0;
function check(name, ok, detail = "") {
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${detail ? `: ${detail}` : ""}`);
  if (ok) passed++;
  else failed++;
}

const work = mkdtempSync(join(tmpdir(), "cbfetch-pack-"));
try {
  // 1. Pack exactly what npm would publish.
  const [{ filename, files }] = JSON.parse(
    run("npm", ["pack", "--json", "--pack-destination", work]),
  );
  const tarball = join(work, filename);
  const paths = files.map((f) => f.path);
  check(
    "tarball holds dist, README and no sources or tests",
    paths.includes("dist/index.js") &&
      paths.includes("README.md") &&
      !paths.some((p) => p.startsWith("src/") || p.startsWith("test/")),
    `${paths.length} files`,
  );

  // 2. publint and arethetypeswrong on the tarball.
  const lint = run(bin("publint"), ["run", tarball, "--strict"]);
  check("publint", !/error|warning/i.test(lint), lint.trim().split("\n").at(-1));
  let attw = "";
  let attwOk = true;
  try {
    attw = run(bin("attw"), [tarball, "--profile", "esm-only", "--format", "ascii"]);
  } catch (error) {
    attwOk = false;
    attw = String(error.stdout ?? error);
  }
  check("arethetypeswrong (esm-only)", attwOk, attwOk ? "" : attw);

  // 3. Install into an empty folder and use it from Node.
  const app = join(work, "app");
  run("mkdir", ["-p", app]);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", type: "module" }));
  // idb-keyval, ky and @opentelemetry/api are optional peer dependencies: users of cbfetch/idb,
  // cbfetch/ky and cbfetch/otel install them too. The Worker consumer below also needs the
  // Workers types and hono (versions as pinned here).
  const pinned = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).devDependencies;
  run(
    "npm",
    [
      "install",
      "--no-audit",
      "--no-fund",
      "--silent",
      tarball,
      "idb-keyval@6",
      "ky@2",
      `hono@${pinned.hono}`,
      `@cloudflare/workers-types@${pinned["@cloudflare/workers-types"]}`,
      "@opentelemetry/api@1",
    ],
    app,
  );
  writeFileSync(
    join(app, "smoke.mjs"),
    `import { cbFetch, createCbFetch, CircuitOpenError, createBreaker, memoryStore } from "cbfetch";
import { idbStore } from "cbfetch/idb";
import { createKy } from "cbfetch/ky";
import { instrument } from "cbfetch/otel";
import { logTransitions } from "cbfetch/log";
import { optionsFromEnv, withCircuitBreaker } from "cbfetch/cloudflare";
import { circuitBreaker } from "cbfetch/hono";
import { handleFetch } from "cbfetch/sw";
import { Hono } from "hono";
import { createServer } from "node:http";
const server = createServer((req, res) => { res.writeHead(503); res.end(); });
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const url = "http://127.0.0.1:" + server.address().port + "/";
const cb = createCbFetch({ failureThreshold: 2 });
const stopOtel = instrument(cb); // the global (no-op) providers
const lines = [];
logTransitions(cb, (line) => lines.push(line));
await new Promise((resolve) => setTimeout(resolve, 50)); // the stats code loads on demand
let hits = 0;
server.on("request", () => hits++);
await cb(url); await cb(url);
const error = await cb(url).catch((e) => e);
if (!(error instanceof CircuitOpenError) || hits !== 2) throw new Error("breaker did not open");
if (lines[0]?.reason !== "trip") throw new Error("cbfetch/log: " + JSON.stringify(lines));
if (cb.breaker(url).stats.errorRate !== 1) throw new Error("cbfetch/otel: no error rate in stats");
stopOtel();
if (typeof cbFetch !== "function" || createBreaker().state !== "closed") throw new Error("exports");
if (typeof idbStore({ dbName: "x" }).load !== "function") throw new Error("cbfetch/idb");
if (typeof handleFetch({ store: memoryStore() }).cbFetch !== "function") throw new Error("cbfetch/sw");
const viaKy = await createKy(cb, { retry: 0 }).get(url, { throwHttpErrors: false }).catch((e) => e);
if (!(viaKy instanceof CircuitOpenError)) throw new Error("cbfetch/ky did not go through the breaker");
const reloaded = createCbFetch({ store: memoryStore() });
await reloaded.ready;
// The Workers middleware and the Hono middleware import and run in plain Node (app.request()).
if (optionsFromEnv({ CB_OPEN_MS: "1000" }).openMs !== 1000) throw new Error("optionsFromEnv");
const worker = withCircuitBreaker(async (_req, _env, _ctx, fetch) => fetch(url), { log: false });
if ((await worker.fetch(new Request("http://w/"), {}, { waitUntil() {} })).status !== 503)
  throw new Error("cbfetch/cloudflare in Node");
const app = new Hono();
app.use(circuitBreaker({ log: false, failureThreshold: 1 }));
app.get("/", (c) => c.var.cbFetch(url));
await app.request("/");
const fastFail = await app.request("/");
if (fastFail.status !== 503 || fastFail.headers.get("cbfetch-circuit") !== "open")
  throw new Error("cbfetch/hono under app.request()");
await cb.close();
server.close();
console.log("imported and tripped: " + error.message);
`,
  );
  const smoke = run("node", ["smoke.mjs"], app);
  check("installed package imports and trips in Node", smoke.includes("tripped"), smoke.trim());

  writeFileSync(
    join(app, "consumer.ts"),
    `import { cbFetch, createCbFetch, CircuitOpenError, createBreaker, type CircuitState } from "cbfetch";
import { idbStore, type IdbStoreOptions } from "cbfetch/idb";
import { createKy } from "cbfetch/ky";
import { instrument, type InstrumentOptions } from "cbfetch/otel";
import { logTransitions, type TransitionLine } from "cbfetch/log";
import { handleFetch, type ServiceWorkerOptions } from "cbfetch/sw";
import type { KyInstance } from "ky";
const idbOptions: IdbStoreOptions = { dbName: "app" };
const cb = createCbFetch({ failureThreshold: 3, timeoutMs: 1000, store: idbStore(idbOptions) });
const state: CircuitState = cb.state("https://api.example.com");
cb.addEventListener("statechange", (event) => console.log(event.key, event.previousState, event.state));
const breaker = createBreaker({ openMs: 1000 });
const permit = breaker.allow();
permit?.success();
export async function get(): Promise<Response | CircuitOpenError> {
  return cbFetch("https://api.example.com").catch((e: CircuitOpenError) => e);
}
export const api: KyInstance = createKy(cb, { retry: 2 });
const otelOptions: InstrumentOptions = {};
export const stop: () => void = instrument(cb, otelOptions);
export const stopLog = logTransitions(cb, (line: TransitionLine) => console.log(line.reason));
export const rate: number | undefined = cb.breaker("https://api.example.com").stats.errorRate;
export { state };
const swOptions: ServiceWorkerOptions = { store: idbStore(), timeoutMs: 10_000, offlinePage: "/offline.html" };
export const onFetch = handleFetch(swOptions);
`,
  );
  writeFileSync(
    join(app, "worker.ts"),
    `import { createCbFetch, CircuitOpenError, type CbFetch } from "cbfetch";
import { durableObjectStore, optionsFromEnv, withCircuitBreaker } from "cbfetch/cloudflare";
import { CircuitBreakerObject } from "cbfetch/cloudflare/object";
import { circuitBreaker } from "cbfetch/hono";
import { Hono } from "hono";
export { CircuitBreakerObject };
interface Env { CIRCUIT_BREAKER: DurableObjectNamespace<CircuitBreakerObject>; UPSTREAM: string }
const app = new Hono<{ Bindings: Env }>();
app.use(circuitBreaker());
app.get("/", (c) => c.var.cbFetch(new URL("/items", c.env.UPSTREAM)));
const plain = new Hono();
plain.use(circuitBreaker({ scope: "colo" }));
plain.get("/", async (c) => {
  const fetch: CbFetch = c.get("cbFetch");
  try {
    return await fetch("https://api.example.com");
  } catch (error) {
    if (error instanceof CircuitOpenError) return c.text("later", 503);
    throw error;
  }
});
export const worker = withCircuitBreaker<Env>(async (request, env, _ctx, cbFetch) =>
  cbFetch(new URL(new URL(request.url).pathname, env.UPSTREAM)));
export function make(env: Env): CbFetch {
  return createCbFetch({ ...optionsFromEnv(env), store: durableObjectStore(env.CIRCUIT_BREAKER) });
}
export default app;
`,
  );
  // Strict consumers with skipLibCheck off: a browser app (ES2022 + DOM, no newer lib) and a
  // Worker (the Workers types, no DOM).
  const consumers = {
    "a browser app (lib ES2022 + DOM)": {
      lib: ["ES2022", "DOM"],
      types: [],
      files: ["consumer.ts"],
    },
    "a Worker (@cloudflare/workers-types, no DOM)": {
      lib: ["ES2022"],
      types: ["@cloudflare/workers-types"],
      files: ["worker.ts"],
    },
  };
  for (const [who, { lib, types, files }] of Object.entries(consumers)) {
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: "NodeNext",
          moduleResolution: "NodeNext",
          target: "ES2022",
          lib,
          types,
          skipLibCheck: false,
          noEmit: true,
        },
        files,
      }),
    );
    let typeErrors = "";
    try {
      run(bin("tsc"), ["-p", join(app, "tsconfig.json")], app);
    } catch (error) {
      typeErrors = String(error.stdout ?? error);
    }
    check(
      `the package's types compile in ${who}, skipLibCheck off`,
      !typeErrors,
      typeErrors.split("\n").slice(0, 12).join("\n"),
    );
  }

  // 4. Size ceilings, and the DESIGN targets beside them (scripts/sizes.mjs, shared with the bench).
  const appCore = await appCoreSize();
  check(
    "an app that only calls createCbFetch() downloads no more core than its ceiling",
    appCore.gzip <= APP_CORE_BUDGET,
    `${appCore.gzip} B (ceiling ${APP_CORE_BUDGET} B; DESIGN target 6000 B: ${appCore.gzip <= 6000 ? "meets" : "misses"})`,
  );
  const inlined = await appCoreInlinedSize();
  check(
    "the same app through a bundler that inlines import() stays within its ceiling",
    inlined.gzip <= APP_INLINED_BUDGET,
    `${inlined.gzip} B (ceiling ${APP_INLINED_BUDGET} B; DESIGN target 10000 B: ${inlined.gzip <= 10_000 ? "meets" : "misses"})`,
  );
  const sw = await serviceWorkerSize();
  check(
    "a Service Worker using cbfetch/sw (handleFetch + idbStore) adds to the core no more than its ceiling",
    sw.besideCore.gzip <= SW_BUDGET,
    `${sw.besideCore.gzip} B (ceiling ${SW_BUDGET} B; issue 28 target 4096 B: ${sw.besideCore.gzip <= 4096 ? "meets" : "misses"}); the whole worker ${sw.total.gzip} B`,
  );
  for (const { entry, name, gzip, parts } of await entrySizes()) {
    const [ceiling, target] = [BUDGETS[entry], TARGETS[entry]];
    const verdict = gzip <= target ? "meets" : "misses";
    check(
      `size of "${name}" min+gzip`,
      gzip <= ceiling,
      `${gzip} B (ceiling ${ceiling} B; DESIGN target ${target} B: ${verdict})`,
    );
    if (entry === ".") {
      // Also proves the split: without it, nothing would be lazy.
      for (const module of Object.keys(LAZY_BUDGETS)) {
        const part = parts.find((p) => p.name === module);
        const ceiling = LAZY_BUDGETS[module];
        check(
          `"${name}" loads its ${module} code only on demand, within its ceiling`,
          part !== undefined && part.gzip <= ceiling,
          `${part?.gzip} B (ceiling ${ceiling} B)`,
        );
      }
    }
  }

  // 5. The worker-example as wrangler bundles it for deployment (offline dry run).
  const worker = workerSize();
  check(
    "worker-example bundles offline (wrangler deploy --dry-run --minify)",
    worker.minified > 0,
    `${worker.minified} B minified, ${worker.gzip} B min+gzip`,
  );
  check(
    "the Worker bundle leaves out the cross-tab code (BroadcastChannel, Web Locks)",
    // The channel's own code (`new BroadcastChannel`, Web Locks, its messages); the core's
    // `sync` option check (`typeof BroadcastChannel`) is not cross-tab code.
    !/new BroadcastChannel|\.locks\b|cross-tab/.test(worker.text),
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}

console.log(`package: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
