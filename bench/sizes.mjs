// Section 5: bundle sizes, min+gzip (DESIGN §6: core ≤ 4 KB; each subpath ≤ 2 KB beside its
// dependency).
//
// Method: scripts/sizes.mjs (shared with the package check). Each entry is bundled by esbuild
// (ESM, minified, platform-neutral, code splitting on) and each chunk gzipped at level 9, its
// package dependencies external. The core is what loads with it; the part it loads with
// `import()` only when a store or sync is set is shown beside it. A subpath is built with the
// core and measured as the chunks it adds beside the core and its dependency. Each dependency is measured on its own, whole and as the subpath uses it; the
// worker-example as `wrangler deploy --dry-run --minify` bundles it (offline); opossum and
// cockatiel bundled the same way, for reference.
import {
  appCoreInlinedSize,
  appCoreSize,
  DEPENDENCIES,
  TARGETS,
  dependencySize,
  entryBreakdown,
  entrySizes,
  peerSizes,
  workerSize,
} from "../scripts/sizes.mjs";
import { barLine, table } from "./lib.mjs";

/** The largest modules of the core, as a reason when it is over its target. */
async function coreReason() {
  const modules = (await entryBreakdown(".")).slice(0, 5);
  const list = modules.map((m) => `${m.file.replace(/^dist\//, "")} ${m.minified}`).join(", ");
  return `largest modules, B minified before gzip: ${list}`;
}

/** DESIGN §6: the core an app gets from `createCbFetch()`, split and inlined. */
export const APP_TARGETS = { split: 6000, inlined: 10_000 };

function print({ entries, dependencies, worker, peers, app }, reason) {
  console.log(
    table(
      ["an app that only calls createCbFetch()", "min B>", "min+gzip B>", "target B>", "verdict"],
      [
        [
          "with a splitting bundler (entry chunk + static imports)",
          app.split.minified,
          app.split.gzip,
          APP_TARGETS.split,
          app.split.gzip <= APP_TARGETS.split ? "meets" : "misses",
        ],
        [
          "with a bundler that inlines import() (esbuild default, wrangler)",
          app.inlined.minified,
          app.inlined.gzip,
          APP_TARGETS.inlined,
          app.inlined.gzip <= APP_TARGETS.inlined ? "meets" : "misses",
        ],
      ],
    ),
  );
  console.log("");
  console.log(
    table(
      ["entry", "min B>", "min+gzip B>", "target B>", "verdict"],
      entries.flatMap((e) => [
        [
          e.name,
          e.minified,
          e.gzip,
          TARGETS[e.entry],
          e.gzip <= TARGETS[e.entry] ? "meets" : "misses",
        ],
        ...e.parts.map((part) => [
          `  + loaded by ${e.name} only with ${WHEN[part.name] ?? part.name}`,
          part.minified,
          part.gzip,
          2048,
          part.gzip <= 2048 ? "meets" : "misses",
        ]),
      ]),
    ),
  );
  console.log("");
  console.log(
    table(
      ["dependency", "of", "whole, min+gzip B>", "as the subpath uses it, min+gzip B>"],
      dependencies.map((d) => [d.name, `cbfetch${d.entry.slice(1)}`, d.whole.gzip, d.used.gzip]),
    ),
  );
  console.log("");
  console.log(
    table(
      ["reference bundle", "min B>", "min+gzip B>"],
      [
        ["worker-example (wrangler deploy --dry-run --minify)", worker.minified, worker.gzip],
        ...peers.map((p) => [p.name, p.minified, p.gzip]),
      ],
    ),
  );
  console.log("");
  const [core, ...subpaths] = entries;
  console.log(
    barLine(
      `core ≤ ${TARGETS["."]} B min+gzip`,
      `${core.gzip} B`,
      core.gzip <= TARGETS["."],
      reason,
    ),
  );
  for (const s of subpaths) {
    const dependency = DEPENDENCIES[s.entry];
    console.log(
      barLine(
        `${s.name} ≤ ${TARGETS[s.entry]} B min+gzip${dependency ? ` beside ${dependency}` : ""}`,
        `${s.gzip} B`,
        s.gzip <= TARGETS[s.entry],
      ),
    );
  }
}

/** When the core loads each of its on-demand parts. */
const WHEN = {
  "shared-state": "a store or sync",
  channel: "sync",
  bulkhead: "maxConcurrent",
  timeout: "timeoutMs or totalTimeoutMs",
  fallback: "fallback or fallbackOrigins",
  retry: "retry or totalTimeoutMs",
  "key-of": "keyOf",
  "failure-rate": "failureRate",
  meter: "slowCallMs or cbfetch/otel",
  network: "a browser (the check of a second place; loaded at once, off the calls' path)",
};

export async function run() {
  console.log("## 5. Sizes: min+gzip of each entry (esbuild), dependencies, worker bundle, peers");
  console.log(
    "esbuild ESM, minified, code splitting, each chunk gzip -9; package dependencies external;" +
      " subpaths beside the core",
  );
  console.log("");
  const entries = await entrySizes();
  const dependencies = [];
  for (const entry of Object.keys(DEPENDENCIES)) dependencies.push(await dependencySize(entry));
  const app = { split: await appCoreSize(), inlined: await appCoreInlinedSize() };
  const sizes = { entries, dependencies, worker: workerSize(), peers: await peerSizes(), app };
  const overTarget = entries[0].gzip > TARGETS["."];
  print(sizes, overTarget ? await coreReason() : undefined);
  return sizes;
}
