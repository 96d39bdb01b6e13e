// `npm run bench`: every DESIGN §6 bar that a benchmark decides, in one run, in this order:
//   1. hot path, stub fetch       (bench/hot-path.mjs)
//   2. real loopback HTTP          (bench/loopback.mjs)
//   3. memory                      (bench/memory.mjs)
//   4. storage and sync traffic    (bench/traffic.mjs)
//   5. bundle sizes                (bench/sizes.mjs)
//   6. retry amplification         (bench/retry.mjs)
//   7. overload                    (bench/overload.mjs; `npm run bench:overload` alone, ~85 s)
//   8. Redis                       (bench/redis.mjs; `node bench/index.mjs redis` alone)
// Each section prints its method, a table and one "bar: … meets/misses" line per bar; all
// figures go to bench/results.json (git-ignored). Run: `npm run bench` (builds, then
// `node --expose-gc --allow-natives-syntax bench/index.mjs`; the second flag only lets
// section 2 print V8's tier of cbfetch's function); adding section names (`… index.mjs memory
// sizes`) runs only those, and BENCH_LOOPBACK_ROUNDS=2 shortens section 2 for a quick try.
// The whole run takes about 3 minutes on a 2-core machine, 85 s of it section 7.
import { writeFileSync } from "node:fs";
import { fmt, machine, machineLine, table, toJson } from "./lib.mjs";

const SECTIONS = {
  "hot-path": () => import("./hot-path.mjs"),
  loopback: () => import("./loopback.mjs"),
  memory: () => import("./memory.mjs"),
  traffic: () => import("./traffic.mjs"),
  sizes: () => import("./sizes.mjs"),
  retry: () => import("./retry.mjs"),
  overload: () => import("./overload.mjs"),
  redis: () => import("./redis.mjs"),
};
const RESULTS_FILE = new URL("./results.json", import.meta.url);

function selectedSections() {
  const names = process.argv.slice(2);
  for (const name of names) {
    if (!(name in SECTIONS))
      throw new Error(`unknown section ${name}; one of ${Object.keys(SECTIONS)}`);
  }
  return names.length > 0 ? names : Object.keys(SECTIONS);
}

async function main() {
  const names = selectedSections();
  const environment = machine();
  console.log("# cbfetch bench (DESIGN §6)");
  console.log(machineLine(environment));
  const results = { environment };
  const started = performance.now();
  for (const name of names) {
    console.log("");
    const sectionStart = performance.now();
    const { run } = await SECTIONS[name]();
    results[name] = await run(results);
    results[name].seconds = (performance.now() - sectionStart) / 1000;
  }
  summary(results);
  environment.loadAverageAtEnd = machine().loadAverage;
  environment.seconds = (performance.now() - started) / 1000;
  console.log("");
  console.log(
    `done in ${environment.seconds.toFixed(0)} s (${names.map((n) => `${n} ${results[n].seconds.toFixed(0)} s`).join(", ")}); ` +
      `load average at end ${environment.loadAverageAtEnd.join(" ")}`,
  );
  writeFileSync(RESULTS_FILE, toJson(results));
}

/**
 * The lean core's figures (issue 24) side by side with their anchors, as ratios where the
 * anchor is another library measured in this run: the closed-state path against cockatiel's
 * ConsecutiveBreaker, the failure-rate window against its SamplingBreaker, memory per idle
 * breaker, and the core's bytes.
 */
function summary(results) {
  const hot = results["hot-path"];
  const memory = results.memory;
  const sizes = results.sizes;
  if (!hot && !memory && !sizes) return;
  const overhead = (name) => hot?.rows?.find((r) => r.name === name)?.overheadNs;
  const row = (figure, cbfetch, anchor, target, meets) => [
    figure,
    cbfetch,
    anchor,
    target,
    meets === undefined ? "–" : meets ? "meets" : "misses",
  ];
  const ratio = (a, b) => (a === undefined || b === undefined ? undefined : a / b);
  const rows = [];
  if (hot) {
    const plain = ratio(
      overhead("cbfetch (consecutive, default)"),
      overhead("cockatiel ConsecutiveBreaker"),
    );
    const rate = ratio(
      overhead("cbfetch (failureRate window)"),
      overhead("cockatiel SamplingBreaker"),
    );
    const throttle = ratio(
      overhead("cbfetch (throttle)"),
      overhead("cbfetch (failureRate window)"),
    );
    rows.push(
      row(
        "closed-state overhead, stub fetch, defaults",
        `+${fmt(overhead("cbfetch (consecutive, default)"))} ns`,
        `cockatiel Consecutive +${fmt(overhead("cockatiel ConsecutiveBreaker"))} ns: ${plain?.toFixed(2)} ×`,
        "≤ 0.6 × cockatiel",
        plain <= 0.6,
      ),
      row(
        "same with a failureRate window",
        `+${fmt(overhead("cbfetch (failureRate window)"))} ns`,
        `cockatiel Sampling +${fmt(overhead("cockatiel SamplingBreaker"))} ns: ${rate?.toFixed(2)} ×`,
        "≤ 1.0 × cockatiel Sampling",
        rate <= 1,
      ),
      row(
        "same with throttle (issue 26)",
        `+${fmt(overhead("cbfetch (throttle)"))} ns`,
        `cbfetch failureRate +${fmt(overhead("cbfetch (failureRate window)"))} ns: ${throttle?.toFixed(2)} ×`,
        "within the failure-rate window's cost (≤ 1.1 ×)",
        // Medians of two figures of a few hundred ns: 10 % either way is this machine's noise.
        throttle <= 1.1,
      ),
    );
  }
  if (memory?.rows) {
    const bytes = (name) => memory.rows.find((r) => r.name === name)?.bytes;
    const own = bytes("cbfetch createBreaker()");
    const cockatiel = bytes("cockatiel ConsecutiveBreaker");
    rows.push(
      row(
        "heap per idle createBreaker()",
        `${fmt(own)} B`,
        `cockatiel ${fmt(cockatiel)} B`,
        "≤ 600 B",
        own <= 600,
      ),
      row(
        "heap per idle breaker in the registry",
        `${fmt(bytes("cbfetch"))} B`,
        `cockatiel ${fmt(cockatiel)} B`,
        "< 500 B",
        bytes("cbfetch") < 500,
      ),
    );
  }
  if (sizes?.app) {
    const cockatiel = sizes.peers?.find((p) => p.name.startsWith("cockatiel (whole"))?.gzip;
    rows.push(
      row(
        "core an app gets from createCbFetch(), min+gzip, splitting",
        `${sizes.app.split.gzip} B`,
        `cockatiel ${cockatiel} B whole`,
        "≤ 6000 B",
        sizes.app.split.gzip <= 6000,
      ),
      row(
        "the same, with a bundler that inlines import()",
        `${sizes.app.inlined.gzip} B`,
        `cockatiel ${cockatiel} B whole`,
        "≤ 10000 B",
        sizes.app.inlined.gzip <= 10_000,
      ),
    );
  }
  console.log("");
  console.log("## The lean core (issue 24): cbfetch beside its anchors, in this run");
  console.log(table(["figure", "cbfetch", "anchor", "target", "verdict"], rows));
}

await main();
