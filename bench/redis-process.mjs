// One process of the Redis bench's fleet (bench/redis.mjs): the built package with redisStore
// on node-redis, and a stub fetch that fails for origins named "down-…" and answers 200 for the
// others. Messages: { id, type: "warm" | "trip" | "watch", url } → the epoch ms at which the
// key was (or became) open here; "warm" → its state after one call; "close".
import { createClient } from "redis";
import { createCbFetch } from "../dist/index.js";
import { redisStore } from "../dist/redis/index.js";

const socket = process.argv[2];
const client = createClient({ socket: { path: socket } });
client.on("error", () => {});
await client.connect();
const cb = createCbFetch({
  store: redisStore({ client }),
  fetch: async (input) =>
    new Response(null, { status: new URL(String(input)).hostname.startsWith("down-") ? 503 : 200 }),
  failureThreshold: 3,
  openMs: 60_000,
});
const now = () => performance.timeOrigin + performance.now();

function opened(url) {
  return new Promise((resolve) => {
    const listener = () => {
      if (cb.state(url) !== "open") return;
      const at = now();
      cb.removeEventListener("statechange", listener);
      resolve(at);
    };
    cb.addEventListener("statechange", listener);
  });
}

const handlers = {
  warm: async ({ url }) => await cb(url).then(() => cb.state(url)),
  watch: ({ url }) => opened(url),
  async trip({ url }) {
    const at = opened(url);
    while (cb.state(url) === "closed") await cb(url).catch(() => {});
    return at;
  },
  async close() {
    await cb.close();
    client.destroy();
    return "closed";
  },
};
process.on("message", async (message) => {
  const value = await handlers[message.type](message);
  process.send(
    { id: message.id, value },
    message.type === "close" ? () => process.exit(0) : undefined,
  );
});
process.send({ id: 0 });
