// One server process of a fleet, for test/redis-fleet.test.ts and the bench: the built package
// with redisStore on a real redis-server (node-redis or ioredis), driven by its parent over IPC.
// argv[2]: JSON { socket, client: "redis" | "ioredis", name, options }. Messages in:
// { id, type: "call", url, count? } → the outcomes ("status 200", "refused", an error's name);
// { id, type: "until", url, state } → answers once the key is in that state (epoch ms then);
// { id, type: "state", url }; { id, type: "close" }. Every answer carries the storeerror count.
import { Redis } from "ioredis";
import { createClient } from "redis";
import { CircuitOpenError, createCbFetch } from "../../dist/index.js";
import { redisStore } from "../../dist/redis/index.js";

const { socket, client: kind, name, options = {}, storeOptions = {} } = JSON.parse(process.argv[2]);
const client =
  kind === "ioredis"
    ? new Redis({ path: socket, maxRetriesPerRequest: 1 })
    : createClient({ socket: { path: socket, reconnectStrategy: () => 50 } });
client.on("error", () => {});
if (kind !== "ioredis") await client.connect();
const cb = createCbFetch({ store: redisStore({ client, ...storeOptions }), ...options });
let storeErrors = 0;
const errorLog = [];
cb.addEventListener("storeerror", (event) => {
  storeErrors++;
  errorLog.push(`${event.key}: ${event.error?.message}`);
});
const now = () => performance.timeOrigin + performance.now();

async function call(url) {
  try {
    const response = await cb(url, { headers: { "x-process": name } });
    await response.arrayBuffer();
    return `status ${response.status}`;
  } catch (error) {
    return error instanceof CircuitOpenError ? "refused" : String(error?.name);
  }
}

function until(url, state) {
  if (cb.state(url) === state) return Promise.resolve(now());
  return new Promise((resolve) => {
    const listener = () => {
      if (cb.state(url) !== state) return;
      cb.removeEventListener("statechange", listener);
      resolve(now());
    };
    cb.addEventListener("statechange", listener);
  });
}

const handlers = {
  async call({ url, count = 1, parallel = 1 }) {
    const outcomes = [];
    for (let i = 0; i < count; i += parallel) {
      const batch = Array.from({ length: Math.min(parallel, count - i) }, () => call(url));
      outcomes.push(...(await Promise.all(batch)));
    }
    return outcomes;
  },
  until: ({ url, state }) => until(url, state),
  state: ({ url }) => cb.state(url),
  async close() {
    await cb.close();
    if (kind === "ioredis") client.disconnect();
    else client.destroy();
    return "closed";
  },
};

process.on("message", async (message) => {
  const value = await handlers[message.type](message);
  if (!process.connected) return;
  const state = message.url ? cb.state(message.url) : undefined;
  // After "close", exit even with a call still waiting at a held upstream.
  const then = message.type === "close" ? () => process.exit(0) : undefined;
  process.send({ id: message.id, value, storeErrors, errorLog, state }, then);
});
await cb.ready;
process.send({ id: 0, value: "ready" });
