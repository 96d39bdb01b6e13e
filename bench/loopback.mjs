// Section 2: overhead on a real HTTP fetch over loopback (DESIGN §6: under 1 % of raw fetch
// latency, median of paired rounds).
//
// Method. A node:http server on 127.0.0.1, in this process, answers 200 with a small JSON
// body; the client is Node's global fetch (undici, keep-alive). (In a separate process the
// server shares the 2 cores with the client and the machine's other load, and latencies spread
// several times wider.) Every variant makes the same GET and reads the body
// (`await res.arrayBuffer()`) the same way: raw fetch, cbfetch (`createCbFetch()`, defaults),
// opossum (defaults, wrapping fetch), cockatiel (ConsecutiveBreaker, wrapping fetch), the
// thinnest possible wrapper (one `.then`: the floor for any wrapper), and raw fetch a second
// time as an A/A control: its "overhead" is the method's noise floor.
// - Sequential (one call in flight): variants alternate request by request, in an order
//   shuffled anew for every cycle (seeded), so they share the machine's load drift and no
//   variant always follows the same one. Per round and variant, the median latency; a variant's
//   overhead is its median divided by raw's in the same round, median over rounds. (Medians:
//   on a shared machine, preemptions put milliseconds into a few requests.)
//   Each request is also timed in phases, to show where cbfetch's overhead goes.
//   Warm-up is 5000 cycles because V8 compiles a function with TurboFan only after enough of
//   its bytecode has run: cbfetch's call reaches TurboFan after about 3000-4000 calls here, and
//   with the 1000 cycles used before, a fifth of the measured requests ran its baseline code
//   (+1.2 to +1.8 % instead of +0.8 %). The tier of cbfetch's function is printed after
//   warm-up. An app making a few requests a minute runs that baseline code: its cost is a few
//   µs a call, still far below a network round trip.
// - 64 in flight: variants cannot alternate request by request (they would queue behind each
//   other), so a round is one burst of `burst` requests per variant by 64 callers, in shuffled
//   order; per round and variant, the burst's wall time per request (inverse throughput);
//   overhead paired per round as above. No gc() between bursts: forced collections made the
//   bursts noisier. On a shared 2-core machine bursts still vary by ±10 %, so this mode's
//   figure is coarse: read it with its interval and the A/A control.
// Median and p99 latencies are over every timed request of the variant; the 95 % interval of
// a median overhead is distribution-free (order statistics).
import { createServer } from "node:http";
import { ConsecutiveBreaker, circuitBreaker, handleAll } from "cockatiel";
import CircuitBreaker from "opossum";
import { createCbFetch } from "../dist/index.js";
import {
  barLine,
  fmt,
  median,
  medianInterval,
  paired,
  percentile,
  signed,
  table,
  v8Tier,
} from "./lib.mjs";

const OVERHEAD_BAR_PERCENT = 1; // DESIGN §6: overhead under 1 % of raw fetch latency
// BENCH_LOOPBACK_ROUNDS=2 (say) shortens both modes for a quick try; figures are then coarse.
const ROUNDS = process.env.BENCH_LOOPBACK_ROUNDS && Number(process.env.BENCH_LOOPBACK_ROUNDS);
const SEQUENTIAL = {
  rounds: ROUNDS || 60,
  cyclesPerRound: 150,
  warmupCycles: 5000,
};
const CONCURRENT = {
  inFlight: 64,
  rounds: ROUNDS || 40,
  burst: 256,
  warmupBursts: 4,
};
const BODY = Buffer.from(JSON.stringify({ ok: true, items: [1, 2, 3], note: "cbfetch bench" }));
const RAW = "raw fetch";
const CBFETCH = "cbfetch (defaults)";
const CONTROL = "raw fetch again (A/A control)";
const THIN = "fetch(url).then((r) => r): the thinnest wrapper";

/** Starts the server; resolves with the URL to fetch and a stop function. */
async function startServer() {
  const server = createServer((request, response) => {
    request.resume();
    response.writeHead(200, { "content-type": "application/json", "content-length": BODY.length });
    response.end(BODY);
  });
  // Longer than any pause in the bench, so kept-alive sockets are never dropped.
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const stop = () => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  };
  return { url: `http://127.0.0.1:${server.address().port}/items?id=1`, stop };
}

/** Each variant: `call(url)` resolves with a Response whose body the caller reads. */
function createVariants() {
  const cb = createCbFetch();
  const opossum = new CircuitBreaker((url) => fetch(url));
  const cockatiel = circuitBreaker(handleAll, {
    halfOpenAfter: 30_000,
    breaker: new ConsecutiveBreaker(5),
  });
  return {
    cb,
    shutdown: () => opossum.shutdown(),
    variants: [
      { name: RAW, call: (url) => fetch(url) },
      { name: CBFETCH, call: (url) => cb(url) },
      { name: "opossum (defaults)", call: (url) => opossum.fire(url) },
      { name: "cockatiel ConsecutiveBreaker", call: (url) => cockatiel.execute(() => fetch(url)) },
      { name: THIN, call: (url) => fetch(url).then((response) => response) },
      { name: CONTROL, call: (url) => fetch(url) },
    ],
  };
}

/** A seeded shuffler (mulberry32), so runs alternate the same way. */
function shuffler(seed) {
  let state = seed;
  const random = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (items) => {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  };
}

/** One request, body read; returns its latency in µs. */
async function timedRequest(call, url) {
  const start = performance.now();
  const response = await call(url);
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`loopback server answered ${response.status}`);
  return (performance.now() - start) * 1000;
}

/**
 * One request, timed in phases (µs): `call`, the synchronous call until it returns its
 * promise (the wrapper's key, breaker and permit, then fetch's own start); `response`, until
 * the promise resolves (the wrapper settling its permit); `total`, with the body read.
 */
async function phasedRequest(call, url) {
  const start = performance.now();
  const pending = call(url);
  const called = performance.now();
  const response = await pending;
  const resolved = performance.now();
  await response.arrayBuffer();
  const end = performance.now();
  if (response.status !== 200) throw new Error(`loopback server answered ${response.status}`);
  return {
    call: (called - start) * 1000,
    response: (resolved - called) * 1000,
    total: (end - start) * 1000,
  };
}

const PHASES = ["call", "response", "total"];

/** Sequential: per round, variant and phase the median µs; and all total latencies. */
async function measureSequential(variants, url, warmedUp) {
  const indexes = variants.map((_, v) => v);
  const shuffle = shuffler(1);
  for (let cycle = 0; cycle < SEQUENTIAL.warmupCycles; cycle++) {
    for (const v of shuffle(indexes)) await phasedRequest(variants[v].call, url);
  }
  warmedUp();
  const phases = Object.fromEntries(PHASES.map((p) => [p, variants.map(() => [])]));
  const latencies = variants.map(() => []);
  for (let round = 0; round < SEQUENTIAL.rounds; round++) {
    const samples = variants.map(() => []);
    for (let cycle = 0; cycle < SEQUENTIAL.cyclesPerRound; cycle++) {
      for (const v of shuffle(indexes)) samples[v].push(await phasedRequest(variants[v].call, url));
    }
    samples.forEach((requests, v) => {
      for (const p of PHASES) phases[p][v].push(median(requests.map((r) => r[p])));
      latencies[v].push(...requests.map((r) => r.total));
    });
  }
  return { perRound: phases.total, latencies, phases };
}

/** `count` requests by `inFlight` callers; pushes latencies, returns wall µs per request. */
async function burst(call, url, count, latencies) {
  let left = count;
  const caller = async () => {
    while (left-- > 0) latencies.push(await timedRequest(call, url));
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: CONCURRENT.inFlight }, caller));
  return ((performance.now() - start) * 1000) / count;
}

/** 64 in flight: returns per round and variant the wall time per request, and latencies. */
async function measureConcurrent(variants, url) {
  const shuffle = shuffler(2);
  for (let i = 0; i < CONCURRENT.warmupBursts; i++) {
    for (const variant of variants) await burst(variant.call, url, CONCURRENT.burst, []);
  }
  const perRound = variants.map(() => []);
  const latencies = variants.map(() => []);
  for (let round = 0; round < CONCURRENT.rounds; round++) {
    for (const v of shuffle(variants.map((_, i) => i))) {
      perRound[v].push(await burst(variants[v].call, url, CONCURRENT.burst, latencies[v]));
    }
  }
  return { perRound, latencies };
}

function summarise(variants, { perRound, latencies }) {
  return variants.map((variant, v) => {
    const overheads = perRound[v].map((value, round) => (value / perRound[0][round] - 1) * 100);
    return {
      name: variant.name,
      usPerRequest: median(perRound[v]),
      medianLatencyUs: median(latencies[v]),
      p99LatencyUs: percentile(latencies[v], 99),
      overheadPercent: median(overheads),
      overheadIntervalPercent: medianInterval(overheads),
      perRoundUs: perRound[v],
    };
  });
}

/** Where a variant's sequential overhead goes: paired µs per phase (see phasedRequest). */
function phasesOf(name, variants, phases) {
  const v = variants.findIndex((variant) => variant.name === name);
  return Object.fromEntries(
    PHASES.map((p) => [p, paired(phases[p][v], phases[p][0], (a, b) => a - b)]),
  );
}

function printMode(title, metric, rows) {
  console.log("");
  console.log(title);
  console.log("");
  console.log(
    table(
      [
        "variant",
        `${metric}>`,
        "median latency µs>",
        "p99 latency µs>",
        "overhead % of raw (median of paired rounds)>",
        "its 95 % interval>",
      ],
      rows.map((r) => [
        r.name,
        fmt(r.usPerRequest, 1),
        fmt(r.medianLatencyUs, 1),
        fmt(r.p99LatencyUs, 1),
        r.name === RAW ? "" : signed(r.overheadPercent, 2),
        r.name === RAW ? "" : r.overheadIntervalPercent.map((q) => signed(q, 1)).join(" to "),
      ]),
    ),
  );
}

/**
 * The bar line. The bar is decided when the A/A control's interval lies within ±bar (the
 * method is that precise here) and cbfetch's interval lies on one side of the bar; otherwise
 * the line says it is unresolved on this machine.
 */
function printBar(mode, rows, why) {
  const cb = rows.find((r) => r.name === CBFETCH);
  const [low, high] = cb.overheadIntervalPercent;
  const [aaLow, aaHigh] = rows.find((r) => r.name === CONTROL).overheadIntervalPercent;
  const precise = -OVERHEAD_BAR_PERCENT < aaLow && aaHigh < OVERHEAD_BAR_PERCENT;
  const resolved = precise && (high < OVERHEAD_BAR_PERCENT || low >= OVERHEAD_BAR_PERCENT);
  const figure =
    `${signed(cb.overheadPercent, 2)} % (95 % interval ${signed(low, 1)} to ${signed(high, 1)}` +
    ` %; A/A control ${signed(aaLow, 1)} to ${signed(aaHigh, 1)} %` +
    `${resolved ? "" : "; unresolved: noise on this machine is wider than the bar"})`;
  console.log(
    barLine(
      `overhead < ${OVERHEAD_BAR_PERCENT} % of raw fetch, ${mode}`,
      figure,
      cb.overheadPercent < OVERHEAD_BAR_PERCENT,
      resolved ? why : undefined,
    ),
  );
}

/** Why cbfetch costs more here than its hot-path figure (section 1), when that was measured. */
function explain(previous, phases, thin) {
  const ns = previous["hot-path"]?.checks?.cbfetchOverheadNs;
  const hot = ns === undefined ? "cache-hot" : `${fmt(ns)} ns in section 1's hot loop`;
  return (
    `cbfetch's closed path (${hot}) runs cache-cold between undici's round trips: ` +
    `${signed(phases.call, 1)} µs in the call (key, registry, breaker, permit) and ` +
    `${signed(phases.response, 1)} µs until the response resolves (settling the permit), ` +
    `where one bare .then costs ${signed(thin.call, 1)} and ${signed(thin.response, 1)} µs`
  );
}

export async function run(previous = {}) {
  console.log("## 2. Real loopback HTTP: raw fetch vs cbfetch vs opossum vs cockatiel");
  const server = await startServer();
  const { cb, variants, shutdown } = createVariants();
  let sequential;
  let concurrent;
  let phases;
  let thin;
  try {
    console.log(`node:http server in this process, ${server.url}; client: Node's global fetch`);
    const measured = await measureSequential(variants, server.url, () =>
      console.log(`after warm-up, V8 runs cbfetch's call as ${v8Tier(cb)} code`),
    );
    sequential = summarise(variants, measured);
    phases = phasesOf(CBFETCH, variants, measured.phases);
    thin = phasesOf(THIN, variants, measured.phases);
    printMode(
      `sequential: ${SEQUENTIAL.rounds} rounds x ${SEQUENTIAL.cyclesPerRound} requests per ` +
        `variant, alternating request by request`,
      "median latency µs (median of rounds)",
      sequential,
    );
    for (const [name, p] of [
      ["cbfetch", phases],
      ["thinnest wrapper", thin],
    ]) {
      console.log(
        `${name} minus raw, paired medians: ${signed(p.call, 2)} µs in the synchronous call, ` +
          `${signed(p.response, 2)} µs until the response, ${signed(p.total, 2)} µs in all`,
      );
    }
    printBar("sequential", sequential, explain(previous, phases, thin));
    concurrent = summarise(variants, await measureConcurrent(variants, server.url));
    printMode(
      `64 in flight: ${CONCURRENT.rounds} rounds x 1 burst of ${CONCURRENT.burst} requests ` +
        `per variant, shuffled order`,
      "µs/request, wall/requests (median of rounds)",
      concurrent,
    );
    printBar("64 in flight", concurrent, "as in the sequential line");
  } finally {
    shutdown();
    await server.stop();
  }
  if (cb.state(server.url) !== "closed") throw new Error("cbfetch's circuit did not stay closed");
  return {
    method: { SEQUENTIAL, CONCURRENT },
    sequential,
    phasesUs: { cbfetch: phases, thinnestWrapper: thin },
    concurrent,
  };
}
