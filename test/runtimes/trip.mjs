// Run by Node 20, Node 22, Bun and Deno (test/server-runtime.test.ts): the built package
// against upstreams the test started, each of which fails at the network level. Prints one
// JSON line: per upstream, the state after the calls and what each call got.
import { CircuitOpenError, createCbFetch } from "../../dist/index.js";

const upstreams = JSON.parse(process.argv[2] ?? "{}");
const results = {};
for (const [name, url] of Object.entries(upstreams)) {
  // The hung upstream needs cbfetch's own timeout; the others fail by themselves.
  const cb = createCbFetch({ failureThreshold: 3, timeoutMs: 300 });
  const outcomes = [];
  for (let i = 0; i < 6; i++) {
    try {
      const response = await cb(url);
      outcomes.push(`status ${response.status}`);
    } catch (error) {
      outcomes.push(error instanceof CircuitOpenError ? "refused" : `${error?.name}`);
    }
  }
  results[name] = { state: cb.state(url), outcomes };
  await cb.close();
}
console.log(JSON.stringify(results));
