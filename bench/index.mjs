// Closed-state per-call cost of cbfetch against raw fetch, opossum and cockatiel (DESIGN §6).
//
// Run: `npm run bench` (builds, then `node --expose-gc bench/index.mjs`).
//
// Method. Machines are shared and noisy, so every number is compared within this one process:
// - the "fetch" is a stub, an async function returning one prebuilt 200 Response, so what is
//   measured is the wrapper's own cost (key derivation, breaker bookkeeping, extra promises);
// - each variant is warmed up (WARMUP sequential calls) so V8 has optimised it;
// - then ROUNDS rounds; each round runs every variant once, ITERATIONS sequential awaited calls,
//   timed with process.hrtime.bigint(); the order alternates (forward, then reverse) so that
//   drift in machine load or GC pressure does not always favour the same variant;
// - the reported ns/op of a variant is the median over its rounds; gc() runs between variants.
// Each variant has its own loop function so one variant's call-site feedback (inline caches)
// cannot slow another down.
import { writeFileSync } from "node:fs";
import os from "node:os";
import { ConsecutiveBreaker, circuitBreaker, handleAll, SamplingBreaker } from "cockatiel";
import CircuitBreaker from "opossum";
import { CircuitOpenError, createCbFetch } from "../dist/index.js";

const WARMUP = 200_000;
const ROUNDS = 15;
const ITERATIONS = 100_000;
const HOT_PATH_BAR_NS = 200; // DESIGN §6: closed-state overhead per call, origin key included
const URL_STRING = "https://api.example.com/items?id=1";
const RESULTS_FILE = new URL("./results.json", import.meta.url);

// Real apps call many paths on one origin: the same origin with 64 different paths and queries.
const PATHS = Array.from(
  { length: 64 },
  (_, i) => `https://api.example.com/items/${i}?page=${i % 7}`,
);
const response = new Response(null, { status: 200 });
/** The stub fetch: resolves at once with the same Response. */
const stub = async (_input, _init) => response;

/**
 * Builds every variant; `run(n)` makes n sequential awaited calls, and `scale` (default 1)
 * shrinks the call counts of slow variants to keep the whole run short.
 */
function createVariants() {
  const cb = createCbFetch({ fetch: stub });
  const cbRate = createCbFetch({
    fetch: stub,
    failureRate: { threshold: 0.5, windowMs: 10_000, minimumCalls: 20 },
  });
  const cbOpen = createCbFetch({ fetch: stub });
  // opossum's default 10 s timeout arms and clears a setTimeout on every call; `timeout: false`
  // (documented in opossum 9's lib/circuit.js) removes it, and with it opossum's only per-call
  // timeout (a hung call then never counts as a failure). Both are measured.
  const opossumNoTimer = new CircuitBreaker(stub, { timeout: false });
  const opossumTimer = new CircuitBreaker(stub, {});
  const consecutive = circuitBreaker(handleAll, {
    halfOpenAfter: 30_000,
    breaker: new ConsecutiveBreaker(5),
  });
  const sampling = circuitBreaker(handleAll, {
    halfOpenAfter: 30_000,
    breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000, minimumRps: 5 }),
  });

  const variants = [
    {
      name: "raw stub",
      async run(n) {
        for (let i = 0; i < n; i++) await stub(URL_STRING);
      },
    },
    {
      name: "cbfetch (consecutive, default)",
      async run(n) {
        for (let i = 0; i < n; i++) await cb(URL_STRING);
      },
    },
    {
      name: "cbfetch (64 paths, one origin)",
      async run(n) {
        for (let i = 0; i < n; i++) await cb(PATHS[i & 63]);
      },
    },
    {
      name: "cbfetch (failureRate window)",
      async run(n) {
        for (let i = 0; i < n; i++) await cbRate(URL_STRING);
      },
    },
    {
      name: "opossum (timeout: false)",
      async run(n) {
        for (let i = 0; i < n; i++) await opossumNoTimer.fire(URL_STRING);
      },
    },
    {
      name: "opossum (default 10 s timeout)",
      async run(n) {
        for (let i = 0; i < n; i++) await opossumTimer.fire(URL_STRING);
      },
    },
    {
      name: "cockatiel ConsecutiveBreaker",
      async run(n) {
        for (let i = 0; i < n; i++) await consecutive.execute(() => stub(URL_STRING));
      },
    },
    {
      name: "cockatiel SamplingBreaker",
      async run(n) {
        for (let i = 0; i < n; i++) await sampling.execute(() => stub(URL_STRING));
      },
    },
    {
      name: "cbfetch fast-fail (open circuit)",
      // Each rejection builds an Error (stack capture: microseconds), so fewer calls suffice.
      scale: 0.1,
      async run(n) {
        // Re-opened before every timed run so the 60 s open period can never lapse mid-bench.
        cbOpen.breaker(URL_STRING).forceOpen(60_000);
        for (let i = 0; i < n; i++) await cbOpen(URL_STRING).catch(() => {});
      },
    },
  ];
  const shutdown = () => {
    opossumNoTimer.shutdown();
    opossumTimer.shutdown();
  };
  return { variants, cb, cbRate, cbOpen, shutdown };
}

/** Fails loudly if a variant does not do what the table says it measures. */
async function sanityCheck({ cb, cbRate, cbOpen }) {
  if ((await cb(URL_STRING)) !== response) throw new Error("cbfetch did not pass the response");
  if ((await cbRate(URL_STRING)) !== response) throw new Error("cbfetch (rate) lost the response");
  cbOpen.breaker(URL_STRING).forceOpen(60_000);
  const error = await cbOpen(URL_STRING).catch((e) => e);
  if (!(error instanceof CircuitOpenError)) throw new Error("open cbfetch did not fail fast");
}

/** Nanoseconds per call for one timed run of `variant`. */
async function timeRun(variant, n) {
  globalThis.gc?.();
  const start = process.hrtime.bigint();
  await variant.run(n);
  return Number(process.hrtime.bigint() - start) / n;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Warms every variant up, then runs the rounds; returns ns/op samples per variant. */
async function measure(variants) {
  const count = (variant, n) => Math.round(n * (variant.scale ?? 1));
  for (const variant of variants) await variant.run(count(variant, WARMUP));
  const samples = new Map(variants.map((v) => [v.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const variant of order)
      samples.get(variant.name).push(await timeRun(variant, count(variant, ITERATIONS)));
  }
  return samples;
}

/**
 * Per variant: median ns/op, and overhead paired per round (this variant's run minus the raw
 * run of the same round, then the median over rounds), which cancels machine-load drift.
 */
function summarise(samples) {
  const raw = samples.get("raw stub");
  return [...samples].map(([name, values]) => {
    const ns = median(values);
    return {
      name,
      nsPerOp: ns,
      overheadNs: median(values.map((v, round) => v - raw[round])),
      ratioToRaw: median(values.map((v, round) => v / raw[round])),
      minNs: Math.min(...values),
      maxNs: Math.max(...values),
      samplesNs: values,
    };
  });
}

/** Median over rounds of (a's run − b's run) in the same round: negative when a is cheaper. */
function pairedDifference(samples, a, b) {
  const bs = samples.get(b);
  return median(samples.get(a).map((v, round) => v - bs[round]));
}

/** The DESIGN §6 hot-path bar: cbfetch's overhead, and paired differences with each peer. */
function checkBar(rows, samples) {
  const row = (name) => rows.find((r) => r.name === name);
  const cbfetch = "cbfetch (consecutive, default)";
  const versus = (peer) => pairedDifference(samples, cbfetch, peer);
  const cockatiel = Math.max(
    versus("cockatiel ConsecutiveBreaker"),
    versus("cockatiel SamplingBreaker"),
  );
  const opossum = Math.max(
    versus("opossum (timeout: false)"),
    versus("opossum (default 10 s timeout)"),
  );
  const overhead = row(cbfetch).overheadNs;
  return {
    cbfetchOverheadNs: overhead,
    minusCheapestCockatielNs: cockatiel,
    minusCheapestOpossumNs: opossum,
    underBar: overhead < HOT_PATH_BAR_NS,
    belowCockatiel: cockatiel < 0,
    belowOpossum: opossum < 0,
  };
}

function environment() {
  return {
    node: process.version,
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.cpus().length,
    date: new Date().toISOString(),
    gcExposed: typeof globalThis.gc === "function",
    warmup: WARMUP,
    rounds: ROUNDS,
    iterationsPerRound: ITERATIONS,
    url: URL_STRING,
  };
}

/**
 * JSON for `bench/results.json` (git-ignored): 2-space indent,
 * ns rounded to 0.1 and ratios to 0.01, short arrays of numbers on one line.
 */
function toJson(data) {
  const round = (key, value) => {
    if (typeof value !== "number") return value;
    const scale = key === "ratioToRaw" ? 100 : 10;
    return Math.round(value * scale) / scale;
  };
  const text = JSON.stringify(data, round, 2).replace(
    /^( *)("[^"]*": )\[\n([\d.,\s-]+)\n *\]/gm,
    (block, indent, label, items) => {
      const line = `${indent}${label}[${items.trim().split(/,\s*/).join(", ")}]`;
      return line.length <= 100 ? line : block;
    },
  );
  return `${text}\n`;
}

const fmt = (n, digits = 0) => n.toFixed(digits);
const verdict = (ok) => (ok ? "meets" : "misses");

function print(env, rows, checks) {
  console.log(`# cbfetch bench: closed-state cost per call, stub fetch`);
  console.log(`node ${env.node}, ${env.cpu} (${env.cores} cores), ${env.date}`);
  console.log(
    `warm-up ${env.warmup}/variant, median of ${env.rounds} rounds x ${env.iterationsPerRound} calls` +
      (env.gcExposed ? "" : " (no --expose-gc: gc between variants skipped)"),
  );
  console.log("");
  console.log("| variant | ns/op | overhead ns (paired) | ratio to raw (paired) |");
  console.log("| --- | ---: | ---: | ---: |");
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${fmt(r.nsPerOp)} | ${fmt(r.overheadNs)} | ${fmt(r.ratioToRaw, 2)} |`,
    );
  }
  console.log("");
  console.log("round-to-round spread (min–max ns/op):");
  for (const r of rows) console.log(`  ${r.name}: ${fmt(r.minNs)}–${fmt(r.maxNs)}`);
  console.log("");
  const ns = fmt(checks.cbfetchOverheadNs);
  console.log(
    `cbfetch closed-state overhead ${ns} ns: ${verdict(checks.underBar)} < ${HOT_PATH_BAR_NS} ns`,
  );
  const signed = (n) => `${n > 0 ? "+" : ""}${fmt(n)}`;
  console.log(
    `below cockatiel: ${verdict(checks.belowCockatiel)} (paired, vs its cheaper breaker: ${signed(checks.minusCheapestCockatielNs)} ns/call)`,
  );
  console.log(
    `below opossum: ${verdict(checks.belowOpossum)} (paired, vs its cheaper setup: ${signed(checks.minusCheapestOpossumNs)} ns/call)`,
  );
}

async function main() {
  const setup = createVariants();
  await sanityCheck(setup);
  const samples = await measure(setup.variants);
  setup.shutdown();
  if (setup.cb.state(URL_STRING) !== "closed")
    throw new Error("closed circuit did not stay closed");
  if (setup.cbOpen.state(URL_STRING) !== "open") throw new Error("open circuit did not stay open");
  const env = environment();
  const rows = summarise(samples);
  const checks = checkBar(rows, samples);
  print(env, rows, checks);
  writeFileSync(RESULTS_FILE, toJson({ environment: env, rows, checks }));
}

await main();
