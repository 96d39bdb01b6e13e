// A tiny flaky upstream to try the worker against: plain Node, no dependencies.
//
//   npm run upstream                     # http://127.0.0.1:8788, healthy
//   npm run upstream -- --port 9000 503  # another port, starting in mode 503
//   curl -X POST http://127.0.0.1:8788/__mode/503   # switch mode while it runs
//   curl http://127.0.0.1:8788/__mode               # mode and request count
//
// Modes: healthy (200 JSON), 503, slow (answers after SLOW_MS, 5000 by default), down (drops
// every connection: a network error), 429 (with Retry-After: RETRY_AFTER seconds, 20 by
// default). Ctrl-C stops it.
import { createServer } from "node:http";
import { parseArgs } from "node:util";

const MODES = ["healthy", "503", "slow", "down", "429"];
const { values, positionals } = parseArgs({
  options: { port: { type: "string" }, host: { type: "string" } },
  allowPositionals: true,
});
const port = Number(values.port ?? process.env.PORT ?? 8788);
const host = values.host ?? "127.0.0.1";
const slowMs = Number(process.env.SLOW_MS ?? 5000);
const retryAfter = process.env.RETRY_AFTER ?? "20";
let mode = positionals[0] ?? "healthy";
if (!MODES.includes(mode)) {
  console.error(`upstream: unknown mode ${JSON.stringify(mode)}; one of ${MODES.join(", ")}`);
  process.exit(2);
}
let requests = 0;
const timers = new Set();

const server = createServer((req, res) => {
  const path = new URL(req.url ?? "/", "http://upstream").pathname;
  // Control routes work in every mode.
  if (path === "/__mode") return json(res, 200, { mode, requests, modes: MODES });
  if (path.startsWith("/__mode/")) {
    const next = decodeURIComponent(path.slice("/__mode/".length));
    if (req.method !== "POST") return json(res, 405, { error: "POST to switch modes" });
    if (!MODES.includes(next)) return json(res, 400, { error: `modes: ${MODES.join(", ")}` });
    mode = next;
    console.log(`upstream: mode ${mode}`);
    return json(res, 200, { mode, requests });
  }
  requests++;
  console.log(`upstream: ${req.method} ${path} (${mode})`);
  switch (mode) {
    case "healthy":
      return json(res, 200, { ok: true, path, requests });
    case "503":
      return json(res, 503, { error: "upstream says 503" });
    case "429":
      res.setHeader("retry-after", retryAfter);
      return json(res, 429, { error: `too many requests; retry after ${retryAfter} s` });
    case "slow": {
      const timer = setTimeout(() => {
        timers.delete(timer);
        json(res, 200, { ok: true, path, slowMs, requests });
      }, slowMs);
      timers.add(timer);
      return;
    }
    case "down":
      return req.socket.destroy();
  }
});

function json(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body) + "\n");
}

server.on("error", (error) => {
  console.error(`upstream: ${error.message}`);
  process.exit(1);
});
server.listen(port, host, () => {
  console.log(`upstream: listening on http://${host}:${port}, mode ${mode}`);
  console.log(
    `upstream: switch with curl -X POST http://${host}:${port}/__mode/<${MODES.join("|")}>`,
  );
});

function stop() {
  for (const timer of timers) clearTimeout(timer);
  server.close(() => {
    console.log("upstream: stopped");
    process.exit(0);
  });
  server.closeAllConnections();
}
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
