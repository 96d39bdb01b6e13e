// Run by Node 22, Bun and Deno (test/redis-runtimes.test.ts): the built package with redisStore
// on node-redis, over the redis-server the test started (a unix socket). argv[2]: JSON
// { socket, open, down }: `open` is an origin already open in Redis, `down` one that fails.
// Prints one JSON line: what the first call to `open` got, and `down`'s outcomes and state.
import { createClient } from "redis";
import { CircuitOpenError, createCbFetch } from "../../dist/index.js";
import { redisStore } from "../../dist/redis/index.js";

const { socket, open, down } = JSON.parse(process.argv[2] ?? "{}");
const client = createClient({ socket: { path: socket } });
client.on("error", () => {});
await client.connect();
const cb = createCbFetch({ store: redisStore({ client }), failureThreshold: 2 });
const outcome = (url) =>
  cb(url).then(
    (response) => `status ${response.status}`,
    (error) => (error instanceof CircuitOpenError ? "refused" : String(error?.name)),
  );
const first = await outcome(open);
const outcomes = [];
for (let i = 0; i < 3; i++) outcomes.push(await outcome(down));
await cb.flush();
const result = { first, outcomes, state: cb.state(down) };
await cb.close();
client.destroy();
console.log(JSON.stringify(result));
