// Section 8: Redis (DESIGN §13: 0 commands per 10 000 healthy calls; an open in force in another
// process in < 100 ms; one command per process per state change).
//
// Method. A redis-server of the bench's own (Debian's, on a unix socket in a temporary folder,
// no persistence). In this process, one cbfetch instance with redisStore on node-redis, whose
// client's sendCommand is wrapped to count every command the store sends; the fetch is a stub
// (200, or 503 while failing), the open period 50 ms with no jitter, so a cycle takes real but
// little time:
// - healthy: 10 000 closed-state calls to one origin, after its first call (which loads it);
// - trip/recover cycle, CYCLES times: failing calls until the circuit opens, one fast-failed
//   call, a wait past retryAt, one successful probe that closes it.
// Beside it, the reference shape of gobreaker v2's distributed breaker (implemented here in the
// bench only, not a port of its code): every call takes a lock (SET NX PX, as redsync does),
// reads the shared state (GET), runs the call, writes the state back (SET) and releases the
// lock (EVALSHA of a compare-and-delete), counted the same way, on the same phases.
// Cross-process latency: two child processes (bench/redis-process.mjs, each its own client),
// ROUNDS rounds each on a fresh origin: the watcher calls it once (so the key is in use there),
// the other trips it; the latency is the watcher's statechange to open minus the tripper's,
// both as performance.timeOrigin + performance.now() on this machine's clock.
import { fork, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "redis";
import { createCbFetch } from "../dist/index.js";
import { redisStore } from "../dist/redis/index.js";
import { barLine, fmt, median, percentile, sleep, table } from "./lib.mjs";

const HEALTHY_CALLS = 10_000;
const CYCLES = 10;
const ROUNDS = 40;
const URL_STRING = "https://api.example.com/items";
const REDIS_SERVER = process.env.REDIS_SERVER_PATH ?? "/usr/bin/redis-server";

async function startRedis() {
  const dir = mkdtempSync(join(tmpdir(), "cbfetch-bench-redis-"));
  const socket = join(dir, "r.sock");
  const server = spawn(
    REDIS_SERVER,
    ["--port", "0", "--unixsocket", socket, "--save", "", "--appendonly", "no", "--dir", dir],
    { stdio: "ignore" },
  );
  while (!existsSync(socket)) await sleep(10);
  return {
    socket,
    async stop() {
      server.kill("SIGKILL");
      await once(server, "exit");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A node-redis client whose commands are counted. */
async function countedClient(socket) {
  const client = createClient({ socket: { path: socket } });
  await client.connect();
  const counter = { commands: 0 };
  const send = client.sendCommand.bind(client);
  client.sendCommand = (args, options) => {
    counter.commands++;
    return send(args, options);
  };
  return { client, counter };
}

/** The phases, for any `cb` with `state`, and a stub whose failing is switched by `control`. */
async function phases(cb, control, counter) {
  control.failing = false;
  await cb(URL_STRING);
  await cb.flush?.();
  let before = counter.commands;
  for (let i = 0; i < HEALTHY_CALLS; i++) await cb(URL_STRING);
  await cb.flush?.();
  const healthy = counter.commands - before;
  before = counter.commands;
  let failures = 0;
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    control.failing = true;
    while (cb.state(URL_STRING) === "closed") {
      await cb(URL_STRING);
      failures++;
    }
    const refused = await cb(URL_STRING).catch((error) => error);
    if (refused instanceof Response) throw new Error("an open circuit let a call through");
    control.failing = false;
    await sleep(Math.max(0, cb.retryAt(URL_STRING) - Date.now()) + 5);
    await cb(URL_STRING);
    if (cb.state(URL_STRING) !== "closed") throw new Error("the probe did not close the circuit");
    await cb.flush?.();
  }
  return {
    healthy,
    perCycle: (counter.commands - before) / CYCLES,
    failuresToTrip: failures / CYCLES,
  };
}

function stubFetch(control) {
  return async () => new Response(null, { status: control.failing ? 503 : 200 });
}

async function cbfetchCounts(socket) {
  const { client, counter } = await countedClient(socket);
  const control = { failing: false };
  const cb = createCbFetch({
    store: redisStore({ client, prefix: "bench-cbfetch:" }),
    fetch: stubFetch(control),
    openMs: 50,
    jitter: 0,
  });
  cb.retryAt = (url) => cb.breaker(url).retryAt;
  try {
    return await phases(cb, control, counter);
  } finally {
    await cb.close();
    client.destroy();
  }
}

const UNLOCK = `if redis.call('GET',KEYS[1])==ARGV[1] then return redis.call('DEL',KEYS[1]) end return 0`;

/**
 * The REFERENCE SHAPE of gobreaker v2's distributed breaker, for comparison only: state in Redis,
 * read and written around every call under a lock. Consecutive failures (5) open it for 50 ms;
 * then one call probes. Not part of cbfetch.
 */
function referenceBreaker(client, fetch) {
  const stateKey = "bench-reference:state";
  const lockKey = "bench-reference:lock";
  let unlockSha;
  const read = async () =>
    JSON.parse((await client.sendCommand(["GET", stateKey])) ?? "null") ?? {
      failures: 0,
      openUntil: 0,
    };
  const call = async (url) => {
    unlockSha ??= await client.sendCommand(["SCRIPT", "LOAD", UNLOCK]);
    const token = Math.random().toString(36).slice(2);
    while ((await client.sendCommand(["SET", lockKey, token, "NX", "PX", "1000"])) !== "OK")
      await sleep(1);
    try {
      const state = await read();
      if (state.openUntil > Date.now()) throw new Error("open");
      const response = await fetch(url);
      const failed = response.status >= 500;
      const next = failed
        ? { failures: state.failures + 1, openUntil: state.failures + 1 >= 5 ? Date.now() + 50 : 0 }
        : { failures: 0, openUntil: 0 };
      await client.sendCommand(["SET", stateKey, JSON.stringify(next)]);
      return response;
    } finally {
      await client.sendCommand(["EVALSHA", unlockSha, "1", lockKey, token]);
    }
  };
  let last = "closed";
  call.state = () => last;
  return { call, read, setLast: (s) => (last = s) };
}

async function referenceCounts(socket) {
  const { client, counter } = await countedClient(socket);
  const control = { failing: false };
  const reference = referenceBreaker(client, stubFetch(control));
  let retryAt = 0;
  // The state seen by the last call (the shape has no local state: it reads Redis every call).
  let state = "closed";
  const cb = async (url) => {
    try {
      const response = await reference.call(url);
      const after = await reference.read();
      counter.commands--; // that read is the bench's bookkeeping, not the breaker's
      state = after.openUntil > Date.now() ? "open" : "closed";
      retryAt = after.openUntil;
      return response;
    } catch (error) {
      state = "open";
      throw error;
    }
  };
  cb.state = () => state;
  cb.retryAt = () => retryAt;
  try {
    return await phases(cb, control, counter);
  } finally {
    client.destroy();
  }
}

/** A child process of the fleet, answering requests over IPC. */
function child(socket) {
  const process_ = fork(fileURLToPath(new URL("./redis-process.mjs", import.meta.url)), [socket], {
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  let next = 1;
  const waiting = new Map();
  let started;
  const ready = new Promise((resolve) => (started = resolve));
  process_.on("message", (message) => {
    if (message.id === 0) return started();
    waiting.get(message.id)?.(message.value);
    waiting.delete(message.id);
  });
  const ask = (type, url) =>
    new Promise((resolve) => {
      const id = next++;
      waiting.set(id, resolve);
      process_.send({ id, type, url });
    });
  return { ready, ask, exited: once(process_, "exit") };
}

async function latencies(socket) {
  const [tripper, watcher] = [child(socket), child(socket)];
  await Promise.all([tripper.ready, watcher.ready]);
  const admin = createClient({ socket: { path: socket } });
  await admin.connect();
  while ((await admin.sendCommand(["PUBSUB", "NUMSUB", "cbfetch:changes"]))[1] < 2) await sleep(5);
  admin.destroy();
  const deltas = [];
  for (let round = 0; round < ROUNDS; round++) {
    const url = `https://down-${round}.example/items`;
    await watcher.ask("warm", url); // in use there (one failure: it stays closed)
    const seen = watcher.ask("watch", url);
    const openedAt = await tripper.ask("trip", url);
    deltas.push((await seen) - openedAt);
  }
  await Promise.all([tripper.ask("close"), watcher.ask("close")]);
  await Promise.all([tripper.exited, watcher.exited]);
  return deltas;
}

export async function run() {
  if (!existsSync(REDIS_SERVER)) {
    console.log(`## 8. Redis: skipped (${REDIS_SERVER} is missing: apt-get install redis-server)`);
    return { skipped: true };
  }
  const redis = await startRedis();
  try {
    const cbfetch = await cbfetchCounts(redis.socket);
    const reference = await referenceCounts(redis.socket);
    const deltas = await latencies(redis.socket);
    const latency = {
      median: median(deltas),
      p99: percentile(deltas, 99),
      max: Math.max(...deltas),
    };
    print(cbfetch, reference, latency);
    return { cbfetch, reference, latency, rounds: ROUNDS };
  } finally {
    await redis.stop();
  }
}

function print(cbfetch, reference, latency) {
  console.log("## 8. Redis: commands per call and per change, cross-process latency (DESIGN §13)");
  console.log(
    `redis-server ${REDIS_SERVER} on a unix socket; node-redis; stub fetch; commands counted at the client`,
  );
  console.log("");
  console.log(
    table(
      [
        "",
        `commands per ${HEALTHY_CALLS} healthy calls>`,
        "commands per trip/recover cycle>",
        "an open in force in another process>",
      ],
      [
        [
          "cbfetch/redis",
          cbfetch.healthy,
          fmt(cbfetch.perCycle, 1),
          `median ${fmt(latency.median, 2)} ms, p99 ${fmt(latency.p99, 2)} ms (${ROUNDS} rounds, 2 processes)`,
        ],
        [
          "REFERENCE SHAPE (bench only): gobreaker v2-style read-modify-write per call under a lock",
          reference.healthy,
          fmt(reference.perCycle, 1),
          "at the next call (every call reads Redis)",
        ],
      ],
    ),
  );
  console.log("");
  console.log(
    barLine(
      `0 commands per ${HEALTHY_CALLS} healthy calls`,
      `${cbfetch.healthy}`,
      cbfetch.healthy === 0,
    ),
  );
  console.log(
    barLine(
      "an open in force in another process < 100 ms",
      `p99 ${fmt(latency.p99, 2)} ms`,
      latency.p99 < 100,
    ),
  );
}
