// `npm run bench`: every DESIGN §6 bar that a benchmark decides, in one run, in this order:
//   1. hot path, stub fetch       (bench/hot-path.mjs)
//   2. real loopback HTTP          (bench/loopback.mjs)
//   3. memory                      (bench/memory.mjs)
//   4. storage and sync traffic    (bench/traffic.mjs)
//   5. bundle sizes                (bench/sizes.mjs)
//   6. retry amplification         (bench/retry.mjs)
//   7. overload                    (bench/overload.mjs; `npm run bench:overload` alone, ~85 s)
// Each section prints its method, a table and one "bar: … meets/misses" line per bar; all
// figures go to bench/results.json (git-ignored). Run: `npm run bench` (builds, then
// `node --expose-gc --allow-natives-syntax bench/index.mjs`; the second flag only lets
// section 2 print V8's tier of cbfetch's function); adding section names (`… index.mjs memory
// sizes`) runs only those, and BENCH_LOOPBACK_ROUNDS=2 shortens section 2 for a quick try.
// The whole run takes about 3 minutes on a 2-core machine, 85 s of it section 7.
import { writeFileSync } from "node:fs";
import { machine, machineLine, toJson } from "./lib.mjs";

const SECTIONS = {
  "hot-path": () => import("./hot-path.mjs"),
  loopback: () => import("./loopback.mjs"),
  memory: () => import("./memory.mjs"),
  traffic: () => import("./traffic.mjs"),
  sizes: () => import("./sizes.mjs"),
  retry: () => import("./retry.mjs"),
  overload: () => import("./overload.mjs"),
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
  environment.loadAverageAtEnd = machine().loadAverage;
  environment.seconds = (performance.now() - started) / 1000;
  console.log("");
  console.log(
    `done in ${environment.seconds.toFixed(0)} s (${names.map((n) => `${n} ${results[n].seconds.toFixed(0)} s`).join(", ")}); ` +
      `load average at end ${environment.loadAverageAtEnd.join(" ")}`,
  );
  writeFileSync(RESULTS_FILE, toJson(results));
}

await main();
