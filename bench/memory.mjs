// Section 3: memory (DESIGN §6: under 500 B per idle breaker, no timer per breaker, bounded by
// `maxBreakers`).
//
// Method (needs --expose-gc). Everything below runs in a fresh child process, so that what
// earlier sections did to V8's state cannot change the figures; cbfetch's bytes per breaker
// are then measured once more in the bench's own process, for comparison.
// - bytes per idle breaker: heap in use after full collections, before and after creating
//   10 000 breakers that stay referenced, divided by 10 000; median of 3 repetitions, after a
//   small warm-up so code and hidden classes are not counted. cbfetch: `cb.breaker(url)` for
//   10 000 origins (`maxBreakers: 20000`; the origin key strings are included); opossum:
//   10 000 `new CircuitBreaker(fn)` with defaults; cockatiel: 10 000 `circuitBreaker(handleAll,
//   { halfOpenAfter, breaker: new ConsecutiveBreaker(5) })`.
// - timers: an async_hooks hook counts live Timeout resources (unref'd ones included, which
//   `process.getActiveResourcesInfo()` does not list) before and after creating 10 000
//   breakers, and again after disposing of them (opossum: `shutdown()`).
// - flat heap: 1 000 000 sequential calls through a stub fetch over 10 000 rotating origins
//   with `maxBreakers: 1000` (every call evicts a breaker); heap after full collections at
//   100 000, 500 000 and 1 000 000 calls.
import { createHook } from "node:async_hooks";
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ConsecutiveBreaker, circuitBreaker, handleAll } from "cockatiel";
import CircuitBreaker from "opossum";
import { Breaker, createBreaker, createCbFetch } from "../dist/index.js";
import { barLine, fmt, hasFastProperties, heapAfterGc, median, table } from "./lib.mjs";

const CHILD_ENV = "CBFETCH_BENCH_MEMORY_CHILD";
const KEYS = 10_000;
const REPETITIONS = 3;
const BYTES_BAR = 500; // DESIGN §6: bytes per idle breaker in the registry
const OWN_BYTES_BAR = 600; // DESIGN §6: bytes per idle createBreaker()
const CALLS = 1_000_000;
const CHECKPOINTS = [100_000, 500_000, CALLS];
const ROTATING_ORIGINS = 10_000;
const MAX_BREAKERS = 1000;
// Growth from 100k to 1M calls that still counts as flat: a leak of one byte per call would
// show 900 KB; what is left is V8's own noise (feedback vectors, code).
const FLAT_TOLERANCE_BYTES = 128 * 1024;

const response = new Response(null, { status: 200 });
const stub = async () => response;
const origin = (i) => `https://k${i}.example`;

/**
 * The breakers measured: `create(n)` makes n idle breakers and returns what holds them;
 * `dispose(holder)` releases whatever they scheduled.
 */
const SUBJECTS = [
  {
    name: "cbfetch",
    create(n) {
      const cb = createCbFetch({ fetch: stub, maxBreakers: 2 * KEYS });
      for (let i = 0; i < n; i++) cb.breaker(origin(i));
      if (cb.snapshot().length !== n) throw new Error("cbfetch did not keep every breaker");
      return cb;
    },
    dispose: (cb) => cb.close(),
  },
  {
    // A breaker of its own: its options, its clock (DESIGN §6: at most 600 B).
    name: "cbfetch createBreaker()",
    create: (n) => Array.from({ length: n }, () => createBreaker()),
    dispose: () => {},
  },
  {
    name: "opossum (defaults)",
    create: (n) => Array.from({ length: n }, () => new CircuitBreaker(stub)),
    dispose: (breakers) => breakers.forEach((b) => b.shutdown()),
  },
  {
    name: "cockatiel ConsecutiveBreaker",
    create: (n) =>
      Array.from({ length: n }, () =>
        circuitBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new ConsecutiveBreaker(5) }),
      ),
    dispose: () => {},
  },
];

/**
 * Heap bytes per breaker for n breakers of one subject. A function of its own, so that no
 * stale reference to an earlier holder survives in the caller's frame (V8 keeps dead
 * registers of a suspended async function alive until they are overwritten).
 */
async function measureOnce(subject, n) {
  const before = heapAfterGc();
  const holder = subject.create(n);
  const after = heapAfterGc();
  await subject.dispose(holder);
  return (after - before) / n;
}

/** Heap bytes per breaker for one subject: median of REPETITIONS measurements. */
async function bytesPerBreaker(subject) {
  await measureOnce(subject, 100); // warm-up: code and hidden classes are not counted
  const samples = [];
  for (let r = 0; r < REPETITIONS; r++) samples.push(await measureOnce(subject, KEYS));
  return { bytes: median(samples), samples };
}

/**
 * Where a cbfetch breaker's bytes go: a `Breaker` sharing one resolved options object, as in
 * cbfetch (with its closed-state Permit, policy and probes array), and the origin key string;
 * the rest is the registry's entry and Map slot. Uses an internal module of the build; without
 * it (renamed), no breakdown.
 */
async function cbfetchBreakdown(total) {
  const internal = await import("../dist/breaker/options.js").catch(() => undefined);
  if (internal?.resolveBreakerOptions === undefined) return undefined;
  const options = internal.resolveBreakerOptions(
    internal.readGroup("bench", {}, internal.BREAKER_NUMBERS),
  );
  const parts = [
    ["Breaker with its Permit, policy and probes array", () => new Breaker(options, "k")],
    ["origin key string", (i) => new URL(origin(i)).origin],
  ];
  const bytes = {};
  for (const [name, make] of parts) {
    const subject = { create: (n) => Array.from({ length: n }, (_, i) => make(i)), dispose() {} };
    await measureOnce(subject, 100);
    bytes[name] = (await measureOnce(subject, KEYS)) - 8; // minus the holder array's slot
  }
  bytes["registry entry and Map slot"] = total - Object.values(bytes).reduce((a, b) => a + b);
  return bytes;
}

/** Live timers (all, and ref'd ones only), counted by an async_hooks hook. */
function timerCounter() {
  const live = new Set();
  const hook = createHook({
    init(id, type) {
      if (type === "Timeout") live.add(id);
    },
    destroy(id) {
      live.delete(id);
    },
  }).enable();
  const count = () => ({
    all: live.size,
    refed: process.getActiveResourcesInfo().filter((type) => type === "Timeout").length,
  });
  return { count, stop: () => hook.disable() };
}

/** Timers each subject leaves scheduled for KEYS breakers, and after disposing of them. */
async function timersOf(subject) {
  const timers = timerCounter();
  try {
    const before = timers.count();
    const holder = subject.create(KEYS);
    const created = timers.count();
    await subject.dispose(holder);
    const disposed = timers.count();
    const delta = (a, b) => ({ all: a.all - b.all, refed: a.refed - b.refed });
    return { whileIdle: delta(created, before), afterDispose: delta(disposed, before) };
  } finally {
    timers.stop();
  }
}

/** Heap at each checkpoint of CALLS calls over rotating origins with maxBreakers 1000. */
async function heapOverCalls() {
  const cb = createCbFetch({ fetch: stub, maxBreakers: MAX_BREAKERS });
  const urls = Array.from({ length: ROTATING_ORIGINS }, (_, i) => `${origin(i)}/items?id=${i}`);
  const heap = {};
  const start = performance.now();
  for (let i = 1; i <= CALLS; i++) {
    await cb(urls[i % ROTATING_ORIGINS]);
    if (CHECKPOINTS.includes(i)) heap[i] = heapAfterGc();
  }
  return {
    heap,
    growth: heap[CALLS] - heap[CHECKPOINTS[0]],
    breakers: cb.snapshot().length,
    seconds: (performance.now() - start) / 1000,
  };
}

function print(rows, flat, breakdown) {
  const kb = (bytes) => `${fmt(bytes / 1024, 1)} KB`;
  console.log(
    `${KEYS} idle breakers per library, heap after full gc, median of ${REPETITIONS} repetitions`,
  );
  console.log("");
  console.log(
    table(
      [
        "breakers",
        "bytes per idle breaker>",
        "timers while idle, all (ref'd)>",
        "timers left after dispose>",
      ],
      rows.map((r) => [
        r.name,
        fmt(r.bytes),
        `${r.timers.whileIdle.all} (${r.timers.whileIdle.refed})`,
        `${r.timers.afterDispose.all}`,
      ]),
    ),
  );
  console.log("");
  const heapAt = Object.entries(flat.heap).map(([calls, bytes]) => `${kb(bytes)} at ${calls}`);
  console.log(
    `flat heap: ${CALLS} calls over ${ROTATING_ORIGINS} rotating origins, maxBreakers ` +
      `${MAX_BREAKERS} (${fmt(flat.seconds, 1)} s): heap ${heapAt.join(", ")} calls; ` +
      `${flat.breakers} breakers kept`,
  );
  console.log("");
  const cb = rows[0];
  const own = rows.find((r) => r.name === "cbfetch createBreaker()");
  const opossum = rows.find((r) => r.name.startsWith("opossum"));
  const perTimer = (r) => (r.timers.whileIdle.all / KEYS).toFixed(0);
  const parts = Object.entries(breakdown ?? {}).map(([name, bytes]) => `${name} ${fmt(bytes)} B`);
  console.log(
    barLine(
      `< ${BYTES_BAR} B per idle breaker`,
      `${fmt(cb.bytes)} B`,
      cb.bytes < BYTES_BAR,
      parts.join(", "),
    ),
  );
  console.log(
    barLine(
      `<= ${OWN_BYTES_BAR} B per idle createBreaker() (a breaker of its own: options, clock)`,
      `${fmt(own.bytes)} B`,
      own.bytes <= OWN_BYTES_BAR,
    ),
  );
  console.log(
    barLine(
      "no timer per breaker",
      `${cb.timers.whileIdle.all} timers for ${KEYS} breakers (opossum: ${perTimer(opossum)} per breaker)`,
      cb.timers.whileIdle.all === 0,
    ),
  );
  console.log(
    barLine(
      `flat heap, bounded by maxBreakers (growth 100k→1M calls < ${kb(FLAT_TOLERANCE_BYTES)})`,
      `${flat.growth >= 0 ? "+" : ""}${kb(flat.growth)}, ${flat.breakers} breakers`,
      flat.growth < FLAT_TOLERANCE_BYTES && flat.breakers <= MAX_BREAKERS,
    ),
  );
}

/** Every measurement of this section, printed; runs in a fresh process (see run). */
async function measureAll() {
  const rows = [];
  for (const subject of SUBJECTS) {
    const { bytes, samples } = await bytesPerBreaker(subject);
    rows.push({ name: subject.name, bytes, samples, timers: await timersOf(subject) });
  }
  const breakdown = await cbfetchBreakdown(rows[0].bytes);
  const flat = await heapOverCalls();
  print(rows, flat, breakdown);
  return { keys: KEYS, rows, cbfetchBreakdown: breakdown, flat };
}

/** Runs measureAll in a child process (its output goes to this one's); resolves with its results. */
function inFreshProcess() {
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ["--expose-gc"],
    env: { ...process.env, [CHILD_ENV]: "1" },
  });
  return new Promise((resolve, reject) => {
    let results;
    child.on("message", (message) => (results = message));
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 && results ? resolve(results) : reject(new Error(`memory child exited ${code}`)),
    );
  });
}

export async function run() {
  console.log("## 3. Memory: bytes per idle breaker, timers, heap over 1M calls");
  if (typeof globalThis.gc !== "function") {
    console.log("skipped: run with node --expose-gc (npm run bench does)");
    return { skipped: true };
  }
  const results = await inFreshProcess();
  // The same cbfetch measurement here, where sections 1 and 2 ran many configurations: a
  // long-lived app meets this too. (With ES private fields, V8 moved Breaker objects to
  // dictionary properties at this point, 1109 B each; Breaker now uses plain properties.)
  const here = await bytesPerBreaker(SUBJECTS[0]);
  const fast = hasFastProperties(createCbFetch({ fetch: stub }).breaker(origin(0)));
  const mode = fast === undefined ? "" : fast ? ", fast properties" : ", dictionary properties";
  console.log(
    `cbfetch measured again in the bench's own process, after the sections before: ` +
      `${fmt(here.bytes)} B per idle breaker${mode}`,
  );
  return { ...results, cbfetchInBenchProcess: here };
}

if (process.env[CHILD_ENV] === "1") {
  process.send(await measureAll());
  process.disconnect();
}
