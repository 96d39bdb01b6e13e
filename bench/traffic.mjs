// Section 4: storage and sync traffic (DESIGN §6: 0 storage writes per 10 000 healthy calls;
// the same asked here of cross-tab messages).
//
// Method. One cbfetch instance with an `idbStore()` on fake-indexeddb, wrapped to count its
// calls, and `sync` on; a second BroadcastChannel of the same name in this process counts the
// messages the instance sends (a BroadcastChannel does not hear its own messages, so these
// are exactly the instance's). The fetch is a stub answering 200 or 500, and the clock is
// injected, so a trip and a recovery take no real time. After each phase the instance is
// flushed and the channel given time to deliver (until no message came for SETTLE_MS).
// - healthy: 10 000 closed-state calls to one origin, after its first call (which loads it);
// - trip/recover cycle, CYCLES times: failing calls until the circuit opens (5 by default),
//   one fast-failed call, the clock moved past the open period, one successful probe that
//   closes the circuit. The open's write is flushed before the clock moves: a store call's
//   deadline is on the instance's clock, and 30 s passing in no real time would time out a
//   write still in flight (a storeerror, and the close written one backoff later: the
//   1.0 write per cycle an earlier run of this bench printed).
import "fake-indexeddb/auto";
import { CircuitOpenError, createCbFetch } from "../dist/index.js";
import { idbStore } from "../dist/idb/index.js";
import { barLine, fmt, sleep, table } from "./lib.mjs";

const HEALTHY_CALLS = 10_000;
const CYCLES = 10;
const SETTLE_MS = 30;
const URL_STRING = "https://api.example.com/items";
const CHANNEL = `bench-traffic-${process.pid}`;

/** An idbStore whose calls are counted, per method. */
function countingStore(inner) {
  const counts = { load: 0, loadAll: 0, save: 0 };
  const counted =
    (name) =>
    (...args) => {
      counts[name]++;
      return inner[name](...args);
    };
  const store = {
    ...inner,
    load: counted("load"),
    loadAll: counted("loadAll"),
    save: counted("save"),
  };
  return { store, counts };
}

/** A second channel of the instance's name, counting what it hears, per message type. */
function channelListener(name) {
  const channel = new BroadcastChannel(`cbfetch:${name}`);
  const heard = { total: 0, byType: {} };
  channel.onmessage = (event) => {
    const type = event.data?.type ?? "unknown";
    heard.total++;
    heard.byType[type] = (heard.byType[type] ?? 0) + 1;
    heard.last = performance.now();
  };
  channel.unref?.();
  return { heard, close: () => channel.close() };
}

/** Flushes the instance, then waits until the channel has been quiet for SETTLE_MS. */
async function settle(cb, heard) {
  await cb.flush();
  const quietSince = () => performance.now() - (heard.last ?? 0);
  do await sleep(SETTLE_MS);
  while (quietSince() < SETTLE_MS);
}

/** Counts so far: storage writes and loads, and messages heard. */
function snapshot(counts, heard) {
  return { saves: counts.save, loads: counts.load + counts.loadAll, messages: heard.total };
}

const delta = (after, before) =>
  Object.fromEntries(Object.keys(after).map((key) => [key, after[key] - before[key]]));

function createSubject() {
  const ok = new Response(null, { status: 200 });
  const failing = new Response(null, { status: 500 });
  const control = { failing: false, now: Date.now() };
  const { store, counts } = countingStore(idbStore({ dbName: `cbfetch-bench-${CHANNEL}` }));
  const listener = channelListener(CHANNEL);
  const cb = createCbFetch({
    fetch: async () => (control.failing ? failing : ok),
    store,
    sync: CHANNEL,
    clock: { now: () => control.now },
  });
  const storeErrors = [];
  cb.addEventListener("storeerror", (event) => storeErrors.push(event));
  return { cb, control, counts, listener, storeErrors };
}

/** Fails until the circuit opens, fast-fails once, then recovers by a probe after the open period. */
async function tripAndRecover({ cb, control }) {
  control.failing = true;
  let calls = 0;
  while (cb.state(URL_STRING) === "closed") {
    await cb(URL_STRING);
    if (++calls > 100) throw new Error("the circuit never opened");
  }
  await cb.flush(); // as the open period's real time would: the open is written
  const refused = await cb(URL_STRING).catch((error) => error);
  if (!(refused instanceof CircuitOpenError)) throw new Error("an open circuit let a call through");
  control.failing = false;
  control.now += cb.breaker(URL_STRING).retryAt - control.now + 1;
  await cb(URL_STRING);
  if (cb.state(URL_STRING) !== "closed") throw new Error("the probe did not close the circuit");
  return calls;
}

function print(healthy, cycle, failuresToTrip, storeErrors) {
  console.log(
    `idbStore on fake-indexeddb (counted) and sync "${CHANNEL}", one origin; ` +
      `messages heard on a second BroadcastChannel`,
  );
  console.log("");
  console.log(
    table(
      ["phase", "storage writes (save)>", "storage loads>", "BroadcastChannel messages>"],
      [
        [`${HEALTHY_CALLS} healthy calls`, healthy.saves, healthy.loads, healthy.messages],
        [
          `per trip/recover cycle (${failuresToTrip} failures, 1 fast-fail, 1 probe; mean of ${CYCLES})`,
          fmt(cycle.saves / CYCLES, 1),
          fmt(cycle.loads / CYCLES, 1),
          fmt(cycle.messages / CYCLES, 1),
        ],
      ],
    ),
  );
  console.log("");
  const types = Object.entries(cycle.byType)
    .filter(([, n]) => n > 0)
    .map(([type, n]) => `${fmt(n / CYCLES, 1)} "${type}"`);
  console.log(
    `messages per cycle by type: ${types.join(", ")} (only what the merge needs: the open and the close; failure counts stay in each tab)`,
  );
  console.log("");
  console.log(
    barLine(
      `0 storage writes per ${HEALTHY_CALLS} healthy calls`,
      `${healthy.saves}`,
      healthy.saves === 0,
    ),
  );
  console.log(
    barLine(
      `0 cross-tab messages per ${HEALTHY_CALLS} healthy calls`,
      `${healthy.messages}`,
      healthy.messages === 0,
    ),
  );
  console.log(`storeerror events in the whole run: ${storeErrors}`);
}

export async function run() {
  console.log("## 4. Storage and sync traffic: IndexedDB writes, BroadcastChannel messages");
  const subject = createSubject();
  const { cb, counts, listener, storeErrors } = subject;
  try {
    await cb.ready;
    await cb(URL_STRING); // the origin's first call loads its stored state
    await settle(cb, listener.heard);

    const beforeHealthy = snapshot(counts, listener.heard);
    for (let i = 0; i < HEALTHY_CALLS; i++) await cb(URL_STRING);
    await settle(cb, listener.heard);
    const healthy = delta(snapshot(counts, listener.heard), beforeHealthy);

    const beforeCycles = snapshot(counts, listener.heard);
    const typesBefore = { ...listener.heard.byType };
    let failuresToTrip = 0;
    for (let i = 0; i < CYCLES; i++) {
      failuresToTrip = await tripAndRecover(subject);
      await settle(cb, listener.heard);
    }
    const cycles = delta(snapshot(counts, listener.heard), beforeCycles);
    cycles.byType = delta(listener.heard.byType, { state: 0, hello: 0, ...typesBefore });
    print(healthy, cycles, failuresToTrip, storeErrors.length);
    if (storeErrors.length > 0) throw new Error(`the store failed: ${storeErrors[0].error}`);
    return { healthyCalls: HEALTHY_CALLS, healthy, cycles: CYCLES, perCycleTotals: cycles };
  } finally {
    await cb.close();
    listener.close();
  }
}
