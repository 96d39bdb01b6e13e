// Section 7: overload (DESIGN §11 and the "overload" row of §6): at twice an upstream's
// capacity, then through an outage and its end, how much each client asks of the upstream and
// how much it gets served.
//
// Method. One run, every client at once, each against its own upstream (bench/overload-upstream.mjs:
// node:http on 127.0.0.1 in a worker thread; a token bucket of C requests/s, a 503 at once to
// the rest, each 503 costing it 2 % of a served request), so they share only the machine. The
// timeline and every figure are those of the deterministic model (bench/overload-model.mjs),
// which test/overload.test.ts asserts on: 30 s at 2 × C offered (Poisson arrivals from a seeded
// source, the same for every client, launched every 5 ms without waiting for answers: callers
// do not slow down because the upstream does), then 10 s in which the upstream answers 503 to
// everything, then 40 s with capacity back. Goodput is what the upstream served, per second, as
// a share of C. Clients: raw fetch; ky `retry: 2` (ky's defaults: 300 and 600 ms, no jitter);
// cockatiel, a ConsecutiveBreaker(5) with cbfetch's 30 s open time inside a retry of 2 attempts
// with its ExponentialBackoff; cbfetch with defaults (`dist/`); cbfetch `throttle` and
// `throttle` + `retry: 2`, which are skipped with a line saying so while the option is unknown.
// The model's own figures follow, on cbfetch's built parts, for comparison.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleAll,
  handleWhen,
  retry,
  wrap,
} from "cockatiel";
import ky from "ky";
import { createCbFetch } from "../dist/index.js";
import { fmt } from "./lib.mjs";
import { SCENARIO, seeded, summarize } from "./overload-model.mjs";
import { bars, chart, figuresTable, model } from "./overload-report.mjs";

const S = SCENARIO;
const LENGTH = S.overloadMs + S.outageMs + S.recoveryMs;
const TICK_MS = 5;
const SEED = 1;
/** Calls still pending this long after the end are left out (ky and retries wait under 1 s). */
const DRAIN_MS = 5000;
const REFUSALS = ["CircuitOpenError", "ThrottledError", "BulkheadFullError", "BrokenCircuitError"];

/** The outcome of one logical request: its body read, or how it failed. */
const settle = (promise) =>
  promise.then(
    (ok) => (ok ? "succeeded" : "failed"),
    (error) => (REFUSALS.includes(error?.name) ? "refused" : "failed"),
  );
const viaFetch = (fetchFn) => (url) =>
  settle(fetchFn(url).then(async (response) => (await response.arrayBuffer(), response.ok)));

function cbfetch(options) {
  return ({ onTransition }) => {
    const cb = createCbFetch(options);
    cb.addEventListener("statechange", (event) => onTransition(event.previousState, event.state));
    return { call: viaFetch(cb), close: () => cb.close() };
  };
}

const COCKATIEL_STATES = {
  [CircuitState.Closed]: "closed",
  [CircuitState.Open]: "open",
  [CircuitState.HalfOpen]: "half-open",
  [CircuitState.Isolated]: "open",
};

export const CLIENTS = [
  { name: "raw fetch", chart: true, make: () => ({ call: viaFetch(fetch) }) },
  {
    name: "ky retry: 2",
    chart: true,
    make: () => {
      const api = ky.create({ retry: 2 });
      return {
        call: (url) =>
          settle(
            api
              .get(url)
              .arrayBuffer()
              .then(() => true),
          ),
      };
    },
  },
  {
    name: "cockatiel breaker + retry",
    make: ({ onTransition }) => {
      const breaker = circuitBreaker(handleAll, {
        halfOpenAfter: 30_000,
        breaker: new ConsecutiveBreaker(5),
      });
      let state = "closed";
      breaker.onStateChange((next) => onTransition(state, (state = COCKATIEL_STATES[next])));
      const retrying = retry(
        handleWhen((error) => !(error instanceof BrokenCircuitError)),
        { maxAttempts: 2, backoff: new ExponentialBackoff() },
      );
      const policy = wrap(retrying, breaker);
      const attempt = async (url) => {
        const response = await fetch(url);
        await response.arrayBuffer();
        if (!response.ok) throw new Error(`status ${response.status}`);
        return true;
      };
      return { call: (url) => settle(policy.execute(() => attempt(url))) };
    },
  },
  { name: "cbfetch defaults", chart: true, make: cbfetch() },
  { name: "cbfetch throttle", chart: true, throttle: true, make: cbfetch({ throttle: true }) },
  {
    name: "cbfetch throttle + retry: 2",
    throttle: true,
    make: cbfetch({ throttle: true, retry: 2 }),
  },
];

function emptySlices() {
  return Array.from({ length: Math.ceil(LENGTH / S.sliceMs) }, () => ({
    arrivals: 0,
    refused: 0,
    succeeded: 0,
    failed: 0,
    transitions: 0,
    trips: 0,
  }));
}

/** A Poisson-distributed count with mean `mean` (small means). */
function poisson(mean, random) {
  const limit = Math.exp(-mean);
  let count = 0;
  for (let p = random(); p > limit; p *= random()) count++;
  return count;
}

async function startUpstreams(count) {
  const worker = new Worker(new URL("./overload-upstream.mjs", import.meta.url), {
    workerData: { scenario: { ...S }, count },
  });
  const { ports } = await new Promise((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
  const report = () =>
    new Promise((resolve) => {
      worker.once("message", resolve);
      worker.postMessage({ report: true });
    });
  return { worker, ports, report };
}

/** Runs the scenario with every client at once; returns per-client slices. */
async function measure(clients) {
  const upstreams = await startUpstreams(clients.length);
  const start = Date.now() + 200;
  upstreams.worker.postMessage({ start });
  const slot = () => Math.min(Math.floor((Date.now() - start) / S.sliceMs), LENGTH / S.sliceMs - 1);
  const runs = clients.map((client, i) => {
    const slices = emptySlices();
    const onTransition = (from, to) => {
      slices[slot()].transitions++;
      if (from === "closed" && to === "open") slices[slot()].trips++;
    };
    return {
      client,
      slices,
      url: `http://127.0.0.1:${upstreams.ports[i]}/items`,
      instance: client.build(onTransition),
      random: seeded(SEED),
      pending: new Set(),
    };
  });
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const cpu = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, start - Date.now()));
  let ticks = 0;
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(Math.floor((Date.now() - start) / TICK_MS), LENGTH / TICK_MS);
      for (; ticks < due; ticks++) {
        for (const run of runs) {
          const count = poisson((S.load * S.capacity * TICK_MS) / 1000, run.random);
          for (let n = 0; n < count; n++) launch(run, slot());
        }
      }
      if (ticks >= LENGTH / TICK_MS) {
        clearInterval(timer);
        resolve();
      }
    }, TICK_MS);
  });
  lag.disable();
  // Both threads: a worker's CPU time counts in its process's.
  const { user, system } = process.cpuUsage(cpu);
  await Promise.race([
    Promise.all(runs.flatMap((run) => [...run.pending])),
    new Promise((resolve) => setTimeout(resolve, DRAIN_MS)),
  ]);
  const { slices: served } = await upstreams.report();
  await Promise.all(runs.map((run) => run.instance.close?.()));
  return {
    eventLoopLagP99Ms: lag.percentile(99) / 1e6,
    cpuShare: (user + system) / 1000 / LENGTH,
    runs: runs.map((run, i) => ({
      client: run.client,
      slices: run.slices.map((slice, s) => ({ ...slice, ...served[i][s] })),
      unsettled: run.pending.size,
    })),
  };
}

function launch(run, at) {
  run.slices[at].arrivals++;
  const call = run.instance.call(run.url).then((outcome) => {
    run.slices[Math.min(at, run.slices.length - 1)][outcome]++;
    run.pending.delete(call);
  });
  run.pending.add(call);
}

/** Each client made, or the reason it cannot be (cbfetch's `throttle` not yet wired). */
function prepare() {
  return CLIENTS.map((client) => {
    try {
      // Made once now only to see whether its options are accepted; `build` makes the real one.
      client.make({ onTransition() {} }).close?.();
      return { ...client, build: (onTransition) => client.make({ onTransition }) };
    } catch (error) {
      return { ...client, why: `not yet wired (${error?.name}: ${error?.message})` };
    }
  });
}

export async function run() {
  console.log("## 7. Overload: 2 × capacity, an outage, and capacity back");
  console.log(
    `C = ${S.capacity} requests/s per upstream (a token bucket holding ${S.burstMs} ms of it; a 503 ` +
      `costs it ${S.rejectCost * 100} % of a served request), ${S.load} × C offered for ` +
      `${S.overloadMs / 1000} s, a ${S.outageMs / 1000} s outage (503 to everything), then ` +
      `${S.recoveryMs / 1000} s with capacity back; every client at once, each on its own ` +
      `upstream on 127.0.0.1; figures over the overload phase after its first ` +
      `${S.warmupMs / 1000} s (trips and transitions: the whole phase)`,
  );
  console.log("");
  const prepared = prepare();
  const active = prepared.filter((client) => !client.why);
  const measured = await measure(active);
  const rows = prepared.map((client) => {
    const got = measured.runs.find((r) => r.client.name === client.name);
    if (!got) return { name: client.name, why: client.why };
    return { name: client.name, unsettled: got.unsettled, ...summarize(got.slices) };
  });
  console.log(figuresTable(rows));
  console.log("");
  // Raw fetch asks nothing of the client side: if it is not offered 2 × C on time, or its
  // upstream cannot serve it about C, the machine (not a client) limited the run.
  const raw = rows[0];
  const asked = S.load * S.capacity;
  const keptUp = Math.abs(raw.offeredPerSecond / asked - 1) <= 0.05 && raw.goodput >= 0.9;
  console.log(
    `${keptUp ? "the machine kept up" : "THE MACHINE DID NOT KEEP UP: the figures say little, run again on a quieter machine"}: ` +
      `raw fetch offered ${fmt(raw.offeredPerSecond)} requests/s of ${asked} asked and was served ` +
      `${fmt(raw.goodput * 100)} % of C; this process used ${fmt(measured.cpuShare * 100)} % of one core ` +
      `(upstreams included), event-loop delay p99 ${fmt(measured.eventLoopLagP99Ms, 1)} ms, ` +
      `${rows.reduce((n, r) => n + (r.unsettled ?? 0), 0)} calls unsettled ${DRAIN_MS / 1000} s after the end`,
  );
  bars(rows);
  console.log("");
  console.log("goodput over time, one character per second (▁ none … █ all of C):");
  console.log(chart(rows.filter((r) => CLIENTS.find((c) => c.name === r.name)?.chart)));
  console.log("");
  const modelled = model(SEED);
  console.log(
    `the deterministic model of the same scenario (seed ${SEED}; test/overload.test.ts):`,
  );
  console.log(figuresTable(modelled));
  console.log("");
  console.log(chart(modelled));
  // At 2 × C raw fetch asks only twice what is served: the bar's k = 2 is met by anything that
  // does not retry. At 4 × C the throttle is what keeps the upstream at about k × served.
  const heavier = { ...SCENARIO, load: 4 };
  const modelled4 = model(SEED, heavier);
  console.log("");
  console.log(`the model at 4 × C offered (seed ${SEED}):`);
  console.log(figuresTable(modelled4));
  return {
    scenario: { ...S },
    eventLoopLagP99Ms: measured.eventLoopLagP99Ms,
    cpuShare: measured.cpuShare,
    machineKeptUp: keptUp,
    rows: rows.map(({ goodputBySlice, ...row }) => ({ ...row, goodputBySlice })),
    model: modelled.map(({ goodputBySlice: _, ...row }) => row),
    model4: modelled4.map(({ goodputBySlice: _, ...row }) => row),
  };
}
