// The capacity-limited upstreams of the overload bench (bench/overload.mjs), one node:http
// server on 127.0.0.1 per client, in a worker thread so that serving and calling do not share
// one event loop. Each is the model's upstream (bench/overload-model.mjs) in real time:
// - a token bucket refilled at `capacity` per second, holding at most `burstMs` of it; a request
//   that finds a token is served (200 after `serviceMs`, its work), any other gets a 503 at once
//   and costs `rejectCost` of a token (reading and refusing it is work too; kept as tokens, not
//   burnt CPU, so the 2-core machine is not what limits the upstream);
// - during the outage, everything is a 503 (no Retry-After, like the overload 503s).
// Counts per slice (by arrival): attempts and served. It stops by itself: the main thread asks
// for the counts at the end, and the worker closes its servers and exits (it also exits if the
// main thread goes away, and after the scenario's length plus a minute in any case).
import { createServer } from "node:http";
import { parentPort, workerData } from "node:worker_threads";
import { phaseAt } from "./overload-model.mjs";

const { scenario: s, count } = workerData;
const burst = Math.max(1, (s.capacity * s.burstMs) / 1000);
const length = s.overloadMs + s.outageMs + s.recoveryMs;
let start = Infinity;

function upstream() {
  let tokens = burst;
  let last = 0;
  const slices = Array.from({ length: Math.ceil(length / s.sliceMs) }, () => ({
    attempts: 0,
    served: 0,
  }));
  const server = createServer((req, res) => {
    req.resume();
    const now = Date.now();
    const t = now - start;
    const slice = t >= 0 ? slices[Math.floor(t / s.sliceMs)] : undefined;
    if (slice) slice.attempts++;
    tokens = Math.min(burst, tokens + ((now - last) * s.capacity) / 1000);
    last = now;
    let ok = false;
    if (t < 0 || phaseAt(t, s) !== "outage") {
      if (tokens >= 1) {
        tokens -= 1;
        ok = true;
      } else tokens = Math.max(-burst, tokens - s.rejectCost);
    }
    if (!ok) {
      res.writeHead(503, { "content-type": "text/plain" }).end("overloaded");
      return;
    }
    if (slice) slice.served++;
    setTimeout(() => res.writeHead(200, { "content-type": "text/plain" }).end("ok"), s.serviceMs);
  });
  server.keepAliveTimeout = 60_000;
  return { server, slices };
}

const upstreams = Array.from({ length: count }, upstream);
await Promise.all(
  upstreams.map(({ server }) => new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))),
);
// A last resort, should the main thread never ask for the counts.
setTimeout(() => process.exit(0), length + 60_000).unref();

parentPort.on("message", (message) => {
  if (message.start !== undefined) {
    start = message.start;
  }
  if (message.report) {
    parentPort.postMessage({ slices: upstreams.map((upstream) => upstream.slices) });
    for (const { server } of upstreams) {
      server.closeAllConnections();
      server.close();
    }
    parentPort.close();
  }
});
parentPort.postMessage({ ports: upstreams.map(({ server }) => server.address().port) });
