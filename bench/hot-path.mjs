// Section 1: closed-state per-call cost of cbfetch against raw fetch, opossum and cockatiel,
// with a stub fetch (DESIGN §6 hot-path bar).
//
// Method. Machines are shared and noisy, so every number is compared within this one process:
// - the "fetch" is a stub, an async function returning one prebuilt 200 Response, so what is
//   measured is the wrapper's own cost (key derivation, breaker bookkeeping, extra promises);
// - each variant is warmed up (WARMUP sequential calls) so V8 has optimised it;
// - then ROUNDS rounds; each round runs every variant once, ITERATIONS sequential awaited calls,
//   timed with process.hrtime.bigint(); the order alternates (forward, then reverse) so that
//   drift in machine load or GC pressure does not always favour the same variant;
// - the reported ns/op of a variant is the median over its rounds; gc() runs between variants;
//   overheads are paired: a variant's run minus the raw run of the same round, median over
//   rounds, which cancels the machine's load drift.
// Each variant has its own loop function so one variant's call-site feedback (inline caches)
// cannot slow another down. Key derivation alone (no call, no promise) is timed in the same
// rounds: cbfetch's own key function on a string, a URL object and a Request, and
// `new URL(s).origin` as the reference a naive keying would pay.
import "fake-indexeddb/auto";
import { ConsecutiveBreaker, circuitBreaker, handleAll, SamplingBreaker } from "cockatiel";
import CircuitBreaker from "opossum";
import { CircuitOpenError, createCbFetch } from "../dist/index.js";
import { idbStore } from "../dist/idb/index.js";
import { instrument } from "../dist/otel/index.js";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { barLine, fmt, median, paired, signed, table } from "./lib.mjs";

const WARMUP = 200_000;
const ROUNDS = 15;
const ITERATIONS = 100_000;
const HOT_PATH_BAR_NS = 200; // DESIGN §6: closed-state overhead per call, origin key included
const URL_STRING = "https://api.example.com/items?id=1";
const URL_OBJECT = new URL(URL_STRING);
const REQUEST = new Request(URL_STRING);
const RAW = "raw stub";
const CBFETCH = "cbfetch (consecutive, default)";
const THIN = "stub(url).then((r) => r): the thinnest wrapper";
const COCKATIEL = "cockatiel ConsecutiveBreaker";
const SYNC = 'cbfetch, sync: "bench" (BroadcastChannel)';
const IDB = "cbfetch, idbStore (fake-indexeddb)";
const NEW_URL = "new URL(s).origin (reference)";
const OTEL_NOOP = "cbfetch instrumented with cbfetch/otel (no-op providers)";
const OTEL_SDK = "cbfetch instrumented with cbfetch/otel (SDK in-memory)";

/** The OpenTelemetry SDK reading metrics in memory, as `test/otel.test.ts` uses it. */
class InMemoryReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

// Real apps call many paths on one origin: the same origin with 64 different paths and queries.
const PATHS = Array.from(
  { length: 64 },
  (_, i) => `https://api.example.com/items/${i}?page=${i % 7}`,
);
const response = new Response(null, { status: 200 });
/** The stub fetch: resolves at once with the same Response. */
const stub = async (_input, _init) => response;

// cbfetch's internal registry, if this build still has it where it was (not public API).
const registryModule = await import("../dist/keys/registry.js").catch(() => undefined);
const optionsModule = await import("../dist/breaker/options.js").catch(() => undefined);
/** A registry that knows two origins, as the key lines look them up. */
function keyRegistry() {
  const { BREAKER_NUMBERS, readGroup, resolveBreakerOptions } = optionsModule;
  const breaker = resolveBreakerOptions(readGroup("bench", {}, BREAKER_NUMBERS));
  return new registryModule.Registry({ breaker, maxBreakers: 1000, preload: false }, () => {});
}
const OTHER_URL = "https://cdn.example.com/assets/app.js";
let sink; // keeps key-derivation results alive so they are not optimised away

/** A variant making n sequential awaited calls of `call`. */
const calls = (name, call, extra = {}) => ({
  name,
  kind: "call",
  ...extra,
  async run(n) {
    for (let i = 0; i < n; i++) await call(i);
  },
});

/** A key-derivation line: n synchronous evaluations of `derive`, no call, no promise. */
const keyLine = (name, derive) => ({
  name,
  kind: "key",
  async run(n) {
    for (let i = 0; i < n; i++) sink = derive();
  },
});

/** The cbfetch instances and peers measured; `close` releases them. */
function createSubjects() {
  const subjects = {
    cb: createCbFetch({ fetch: stub }),
    cbRate: createCbFetch({
      fetch: stub,
      failureRate: { threshold: 0.5, windowMs: 10_000, minimumCalls: 20 },
    }),
    // Issue 26: the adaptive throttle reads the clock and moves its window on every call.
    cbThrottle: createCbFetch({ fetch: stub, throttle: true }),
    cbSync: createCbFetch({ fetch: stub, sync: "bench" }),
    cbIdb: createCbFetch({ fetch: stub, store: idbStore({ dbName: "cbfetch-bench-hot-path" }) }),
    cbOpen: createCbFetch({ fetch: stub }),
    cbOtelNoop: createCbFetch({ fetch: stub }),
    cbOtelSdk: createCbFetch({ fetch: stub }),
    reader: new InMemoryReader(),
    // opossum's default 10 s timeout arms and clears a setTimeout on every call; `timeout: false`
    // (documented in opossum 9's lib/circuit.js) removes it, and with it opossum's only per-call
    // timeout (a hung call then never counts as a failure). Both are measured.
    opossumNoTimer: new CircuitBreaker(stub, { timeout: false }),
    opossumTimer: new CircuitBreaker(stub, {}),
    consecutive: circuitBreaker(handleAll, {
      halfOpenAfter: 30_000,
      breaker: new ConsecutiveBreaker(5),
    }),
    sampling: circuitBreaker(handleAll, {
      halfOpenAfter: 30_000,
      breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000, minimumRps: 5 }),
    }),
  };
  // The global providers are OpenTelemetry's no-op ones unless an app registers an SDK.
  subjects.stopNoop = instrument(subjects.cbOtelNoop);
  subjects.meterProvider = new MeterProvider({ readers: [subjects.reader] });
  subjects.tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())],
  });
  subjects.stopSdk = instrument(subjects.cbOtelSdk, {
    meterProvider: subjects.meterProvider,
    tracerProvider: subjects.tracerProvider,
  });
  subjects.close = async () => {
    subjects.stopNoop();
    subjects.stopSdk();
    await subjects.meterProvider.shutdown();
    await subjects.tracerProvider.shutdown();
    subjects.opossumNoTimer.shutdown();
    subjects.opossumTimer.shutdown();
    await Promise.all([subjects.cbSync.close(), subjects.cbIdb.close()]);
  };
  return subjects;
}

function createVariants(s) {
  const { cb, cbRate, cbThrottle, cbSync, cbIdb, cbOpen } = s;
  const variants = [
    calls(RAW, () => stub(URL_STRING)),
    calls(THIN, () => stub(URL_STRING).then((r) => r)),
    calls(CBFETCH, () => cb(URL_STRING)),
    calls("cbfetch, URL object input", () => cb(URL_OBJECT)),
    calls("cbfetch, Request input", () => cb(REQUEST)),
    calls("cbfetch (64 paths, one origin)", (i) => cb(PATHS[i & 63])),
    calls("cbfetch (failureRate window)", () => cbRate(URL_STRING)),
    calls("cbfetch (throttle)", () => cbThrottle(URL_STRING)),
    calls(SYNC, () => cbSync(URL_STRING)),
    calls(OTEL_NOOP, () => s.cbOtelNoop(URL_STRING)),
    calls(OTEL_SDK, () => s.cbOtelSdk(URL_STRING)),
    calls(IDB, () => cbIdb(URL_STRING)),
    calls("opossum (timeout: false)", () => s.opossumNoTimer.fire(URL_STRING)),
    calls("opossum (default 10 s timeout)", () => s.opossumTimer.fire(URL_STRING)),
    calls(COCKATIEL, () => s.consecutive.execute(() => stub(URL_STRING))),
    calls("cockatiel SamplingBreaker", () => s.sampling.execute(() => stub(URL_STRING))),
    {
      ...calls("cbfetch fast-fail (open circuit)", () => cbOpen(URL_STRING).catch(() => {})),
      // Rejections cost microseconds, so fewer calls suffice. Re-opened before every timed run
      // so the 60 s open period can never lapse mid-bench.
      scale: 0.1,
      before: () => cbOpen.breaker(URL_STRING).forceOpen(60_000),
    },
    keyLine(NEW_URL, () => new URL(URL_STRING).origin),
  ];
  if (registryModule !== undefined && optionsModule !== undefined) {
    // A call finds its key in the registry: the last origin by a prefix test, any other known
    // origin by one map lookup of the URL's text up to its path; only an origin's first call
    // parses the URL. Two origins alternating defeat the last-origin test.
    const registry = keyRegistry();
    let flip = 0;
    variants.push(
      keyLine("cbfetch key: the last origin again", () => registry.forUrl(URL_STRING)),
      keyLine("cbfetch key: two known origins, alternating", () =>
        registry.forUrl(flip++ % 2 ? URL_STRING : OTHER_URL),
      ),
    );
  }
  return variants;
}

/** Fails loudly if a variant does not do what the table says it measures. */
async function sanityCheck({ cb, cbRate, cbSync, cbIdb, cbOpen, cbOtelSdk, reader }) {
  await Promise.all([cbSync.ready, cbIdb.ready, cbOtelSdk._timeCalls().ready]);
  await cbOtelSdk(URL_STRING);
  const { resourceMetrics } = await reader.collect();
  const counted = resourceMetrics.scopeMetrics
    .flatMap((scope) => scope.metrics)
    .find((metric) => metric.descriptor.name === "cbfetch.calls");
  if (counted?.dataPoints[0]?.value !== 1) throw new Error("cbfetch/otel did not count the call");
  if (cbOtelSdk.breaker(URL_STRING).stats.errorRate !== 0) throw new Error("no error rate");
  for (const [name, instance] of Object.entries({ cb, cbRate, cbSync, cbIdb })) {
    for (const input of [URL_STRING, URL_OBJECT, REQUEST]) {
      if ((await instance(input)) !== response) throw new Error(`${name} lost the response`);
    }
  }
  cbOpen.breaker(URL_STRING).forceOpen(60_000);
  const error = await cbOpen(URL_STRING).catch((e) => e);
  if (!(error instanceof CircuitOpenError)) throw new Error("open cbfetch did not fail fast");
  if (registryModule && keyRegistry().forUrl(URL_STRING)?.breaker.key !== URL_OBJECT.origin)
    throw new Error("cbfetch's registry changed: update the key lines");
}

/** Nanoseconds per call for one timed run of `variant`. */
async function timeRun(variant, n) {
  variant.before?.();
  globalThis.gc?.();
  const start = process.hrtime.bigint();
  await variant.run(n);
  return Number(process.hrtime.bigint() - start) / n;
}

/** Warms every variant up, then runs the rounds; returns ns/op samples per variant. */
async function measure(variants) {
  const count = (variant, n) => Math.round(n * (variant.scale ?? 1));
  for (const variant of variants) {
    variant.before?.();
    await variant.run(count(variant, WARMUP));
  }
  const samples = new Map(variants.map((v) => [v.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const variant of order)
      samples.get(variant.name).push(await timeRun(variant, count(variant, ITERATIONS)));
  }
  return samples;
}

/** Per variant: median ns/op, and overhead and ratio to raw paired per round. */
function summarise(variants, samples) {
  const raw = samples.get(RAW);
  return variants.map(({ name, kind }) => {
    const values = samples.get(name);
    return {
      name,
      kind,
      nsPerOp: median(values),
      overheadNs: kind === "call" ? paired(values, raw, (v, r) => v - r) : undefined,
      ratioToRaw: kind === "call" ? paired(values, raw, (v, r) => v / r) : undefined,
      minNs: Math.min(...values),
      maxNs: Math.max(...values),
      samplesNs: values,
    };
  });
}

/** The DESIGN §6 hot-path bar: cbfetch's overhead, and paired differences with each peer. */
function checkBar(rows, samples) {
  const versus = (peer) => paired(samples.get(CBFETCH), samples.get(peer), (a, b) => a - b);
  const cockatiel = Math.max(versus(COCKATIEL), versus("cockatiel SamplingBreaker"));
  const opossum = Math.max(
    versus("opossum (timeout: false)"),
    versus("opossum (default 10 s timeout)"),
  );
  const overhead = (name) => rows.find((r) => r.name === name).overheadNs;
  return {
    cbfetchOverheadNs: overhead(CBFETCH),
    syncOverheadNs: overhead(SYNC),
    otelNoopOverheadNs: overhead(OTEL_NOOP),
    otelSdkOverheadNs: overhead(OTEL_SDK),
    otelNoopMinusDefaultNs: paired(samples.get(OTEL_NOOP), samples.get(CBFETCH), (a, b) => a - b),
    otelSdkMinusDefaultNs: paired(samples.get(OTEL_SDK), samples.get(CBFETCH), (a, b) => a - b),
    idbOverheadNs: overhead(IDB),
    thinOverheadNs: overhead(THIN),
    syncMinusDefaultNs: paired(samples.get(SYNC), samples.get(CBFETCH), (a, b) => a - b),
    idbMinusDefaultNs: paired(samples.get(IDB), samples.get(CBFETCH), (a, b) => a - b),
    newUrlNs: rows.find((r) => r.name === NEW_URL).nsPerOp,
    cockatielOverheadNs: overhead(COCKATIEL),
    minusCheapestCockatielNs: cockatiel,
    minusCheapestOpossumNs: opossum,
    underBar: overhead(CBFETCH) < HOT_PATH_BAR_NS,
    belowCockatiel: cockatiel < 0,
    belowOpossum: opossum < 0,
  };
}

/** What the hot-path overhead is made of, and how fast this machine runs the references. */
function hotPathReason(c) {
  return (
    `${fmt(c.thinOverheadNs)} ns of it is the one .then any wrapper adds, ` +
    `${fmt(c.cbfetchOverheadNs - c.thinOverheadNs)} ns is cbfetch's own (key, registry, ` +
    `breaker, permit); this machine runs cockatiel at ${fmt(c.cockatielOverheadNs)} ns and ` +
    `new URL(s).origin at ${fmt(c.newUrlNs)} ns, where DESIGN measured 220–260 and ~375 ns`
  );
}

/** Sync and a store add nothing to a closed-state call: their gap to the default is noise. */
const sameAsDefault = (ns) =>
  `same closed path as the default (neither sync nor the store is touched by a closed-state ` +
  `call): ${signed(ns)} ns from it, paired, is this machine's noise`;

function print(rows, checks) {
  console.log(`## 1. Hot path: closed-state cost per call, stub fetch`);
  console.log(
    `warm-up ${WARMUP}/variant, median of ${ROUNDS} alternating rounds x ${ITERATIONS} calls ` +
      `(fast-fail: x ${ITERATIONS / 10}); url ${URL_STRING}`,
  );
  console.log("");
  const callRows = rows.filter((r) => r.kind === "call");
  console.log(
    table(
      ["variant", "ns/op>", "overhead ns (paired)>", "ratio to raw (paired)>"],
      callRows.map((r) => [r.name, fmt(r.nsPerOp), fmt(r.overheadNs), fmt(r.ratioToRaw, 2)]),
    ),
  );
  console.log("");
  console.log(
    "key derivation alone (no call; cbfetch's key function is internal, and a call skips it " +
      "for a URL of the origin it saw last: a prefix test):",
  );
  console.log("");
  console.log(
    table(
      ["origin key from", "ns/op>"],
      rows.filter((r) => r.kind === "key").map((r) => [r.name, fmt(r.nsPerOp)]),
    ),
  );
  console.log("");
  console.log("round-to-round spread (min–max ns/op):");
  for (const r of rows) console.log(`  ${r.name}: ${fmt(r.minNs)}–${fmt(r.maxNs)}`);
  console.log("");
  const bar = `closed-state overhead < ${HOT_PATH_BAR_NS} ns, origin key included`;
  const why = hotPathReason(checks);
  console.log(barLine(bar, `${fmt(checks.cbfetchOverheadNs)} ns`, checks.underBar, why));
  for (const [label, ns, gap] of [
    ["with sync on", checks.syncOverheadNs, checks.syncMinusDefaultNs],
    ["with an idbStore", checks.idbOverheadNs, checks.idbMinusDefaultNs],
  ]) {
    const ok = ns < HOT_PATH_BAR_NS;
    console.log(barLine(`${bar}, ${label}`, `${fmt(ns)} ns`, ok, sameAsDefault(gap)));
  }
  console.log(
    `instrumented with cbfetch/otel, per call (paired against the plain instance): ` +
      `${signed(checks.otelNoopMinusDefaultNs)} ns with the no-op providers, ` +
      `${signed(checks.otelSdkMinusDefaultNs)} ns with the SDK reading in memory ` +
      `(a clock read at each end, a success event, a counter and a histogram); ` +
      `a plain instance pays none of it`,
  );
  console.log(
    barLine(
      "below cockatiel (paired, vs its cheaper breaker)",
      `${signed(checks.minusCheapestCockatielNs)} ns/call`,
      checks.belowCockatiel,
    ),
  );
  console.log(
    barLine(
      "below opossum (paired, vs its cheaper setup)",
      `${signed(checks.minusCheapestOpossumNs)} ns/call`,
      checks.belowOpossum,
    ),
  );
}

export async function run() {
  const subjects = createSubjects();
  await sanityCheck(subjects);
  const variants = createVariants(subjects);
  const samples = await measure(variants);
  if (sink === undefined) throw new Error("key derivation gave nothing");
  if (subjects.cb.state(URL_STRING) !== "closed")
    throw new Error("closed circuit did not stay closed");
  if (subjects.cbOpen.state(URL_STRING) !== "open")
    throw new Error("open circuit did not stay open");
  await subjects.close();
  const rows = summarise(variants, samples);
  const checks = checkBar(rows, samples);
  print(rows, checks);
  return {
    method: { warmup: WARMUP, rounds: ROUNDS, iterationsPerRound: ITERATIONS, url: URL_STRING },
    rows,
    checks,
  };
}
