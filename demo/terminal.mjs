// cbfetch terminal demo: `npm run demo` (`npm start` is the dashboard in web-example/).
//
// A flaky HTTP server on 127.0.0.1 follows a script: healthy, then an outage (503s, then dropped
// connections), then a 429 with `Retry-After: 1`, then healthy again. An app calls it through
// cbfetch every 50 ms for 8 s. Watch the breaker trip, fail fast (those calls never reach the
// server: "saved"), probe in half-open, re-open with a doubled (jittered) open time, honour
// Retry-After exactly, and close again once a probe succeeds.
//
// Expected story: closed → open (~1.1 s) → half-open → open (503, ~1 s) → half-open → open
// (dropped connection, ~2 s) → half-open → open (429, exactly 1 s) → half-open → closed (~5.7 s).
// Output is coloured on a terminal only (set NO_COLOR to turn that off too).
import http from "node:http";
import { performance } from "node:perf_hooks";
import { CircuitOpenError, createCbFetch, systemClock } from "../dist/index.js";

const CALL_EVERY_MS = 50;
const RUN_MS = 8000;
const TALLY_EVERY_MS = 1000;
const HANG_LIMIT_MS = 20_000;

const BREAKER_OPTIONS = {
  failureThreshold: 3, // 3 failures in a row trip the circuit
  openMs: 500, // first open period; doubled on each re-open (backoff 2, the default)
  jitter: 0.1, // ±10 % on open periods (Retry-After is exact)
  maxOpenMs: 4000,
  timeoutMs: 1000,
};

// The server's script: each phase runs until `until` ms after the start. The breaker trips at
// ~1.1 s and then sends one probe at ~1.6 s, ~2.7 s, ~4.7 s (4.25–5.15 s with all the jitter)
// and exactly 1 s after that one; the boundaries sit between the probes, so each probe meets
// the phase the story needs. A dropped connection still counts as a request that reached us.
const TIMELINE = [
  { until: 1000, label: "healthy: 200 OK", respond: ok },
  { until: 2200, label: "outage: 503 Service Unavailable", respond: unavailable },
  { until: 3500, label: "outage: connections dropped", respond: dropConnection },
  { until: 5200, label: "rate limited: 429 Too Many Requests, Retry-After: 1", respond: tooMany },
  { until: Number.POSITIVE_INFINITY, label: "healthy again: 200 OK", respond: ok },
];

// ---------------------------------------------------------------------------------------------
// Output helpers: plain ANSI colours, only on a terminal.

const useColour = process.stdout.isTTY === true && !("NO_COLOR" in process.env);
const paint = (code) => (text) => (useColour ? `\x1b[${code}m${text}\x1b[0m` : String(text));
const dim = paint(2);
const bold = paint(1);
const red = paint(31);
const green = paint(32);
const yellow = paint(33);
const cyan = paint(36);

const STATE_COLOUR = { closed: green, open: red, "half-open": yellow };
const GLYPH = { ok: green("●"), failure: red("✕"), saved: dim("○") };

let startedAt = performance.now();
const elapsed = () => performance.now() - startedAt;
const seconds = (ms) => `${(ms / 1000).toFixed(2).padStart(5)} s`;
const stateName = (state) => STATE_COLOUR[state](state);

/** One line of the story: time since the start, a tag (padded, then coloured), the text. */
function line(at, tag, colour, text) {
  console.log(`${dim(seconds(at))}  ${colour(tag.padEnd(9))}  ${text}`);
}

/** A state change stands out: the origin takes the tag's place. */
function stateLine(at, origin, from, to, text) {
  const padding = " ".repeat(18 - `${from} → ${to}`.length); // pad what shows, not escapes
  const change = `${stateName(from)} → ${stateName(to)}${padding}`;
  console.log(`${dim(seconds(at))}  ${cyan(origin)}  ${change}  ${text}`);
}

// ---------------------------------------------------------------------------------------------
// The flaky server.

function ok(_req, res) {
  res.writeHead(200, { "content-type": "text/plain" }).end("ok");
}

function unavailable(_req, res) {
  res.writeHead(503, { "content-type": "text/plain" }).end("down for maintenance");
}

function dropConnection(req) {
  req.socket.destroy();
}

function tooMany(_req, res) {
  res.writeHead(429, { "content-type": "text/plain", "retry-after": "1" }).end("slow down");
}

function phaseAt(ms) {
  return TIMELINE.find((phase) => ms < phase.until);
}

/** Starts the server on an ephemeral port; `counts.reached` counts every request it sees. */
function startServer(counts) {
  const server = http.createServer((req, res) => {
    counts.reached++;
    phaseAt(elapsed()).respond(req, res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

// ---------------------------------------------------------------------------------------------
// The breaker's story, as it happens.

/**
 * The underlying fetch (the `fetch` option), noting each response's Retry-After header so a
 * state-change line can say why the circuit opened for exactly that long.
 */
function fetchNotingRetryAfter(seen) {
  return async (input, init) => {
    seen.retryAfter = null;
    const res = await fetch(input, init);
    seen.retryAfter = res.headers.get("retry-after");
    return res;
  };
}

/** Prints one line per state change, with the failure that caused it when there is one. */
function watchBreaker(cb, counts, seen) {
  const clock = systemClock(); // a system clock, as the breaker's: "retry in" matches its retryAt
  let pending = [];
  let cause;

  // A failure event fires right after the state change it causes, in the same tick: collect
  // both, then print once the tick's synchronous work is done.
  function flush() {
    for (const { at, event, retryIn } of pending) {
      const text = explain(event, retryIn, cause);
      stateLine(at, event.key, event.previousState, event.state, text);
      if (event.state === "open") counts.announceNextFastFail = true;
    }
    pending = [];
    cause = undefined;
  }

  cb.addEventListener("statechange", (event) => {
    const retryIn = event.retryAt === undefined ? 0 : Math.round(event.retryAt - clock.now());
    if (pending.length === 0) queueMicrotask(flush);
    pending.push({ at: elapsed(), event, retryIn });
  });
  cb.addEventListener("failure", (event) => {
    counts.failures++;
    const kind = describe(event);
    counts.failureKinds.set(kind, (counts.failureKinds.get(kind) ?? 0) + 1);
    cause = { event, retryAfter: seen.retryAfter };
  });
}

/** The right-hand side of a state-change line. */
function explain(event, retryIn, cause) {
  if (event.state === "half-open") return dim("the next call is a probe");
  if (event.state === "closed") return green("probe succeeded");
  const retry = bold(`retry in ${retryIn} ms`);
  if (cause === undefined) return retry;
  const reason = describe(cause.event);
  if (cause.retryAfter !== null) {
    const who = event.previousState === "half-open" ? "probe: " : "";
    return `${retry}  ${dim(`${who}${reason}, Retry-After: ${cause.retryAfter}`)}`;
  }
  if (event.previousState === "closed") {
    const n = BREAKER_OPTIONS.failureThreshold;
    return `${retry}  ${dim(`${n} failures in a row (${reason})`)}`;
  }
  return `${retry}  ${dim(`probe: ${reason}, backoff ×2`)}`;
}

/** A failure event in a few words. */
function describe(event) {
  if (event.kind === "status") return `HTTP ${event.status}`;
  if (event.kind === "timeout") return "timeout";
  return "network error";
}

// ---------------------------------------------------------------------------------------------
// The app: one call every 50 ms.

/** Makes one call and records how it went: reached the server and OK, failed, or saved. */
async function call(cb, url, counts) {
  counts.calls++;
  try {
    const res = await cb(url);
    await res.text(); // drain the body so the connection can be reused
    counts.strip.push(res.ok ? GLYPH.ok : GLYPH.failure);
  } catch (error) {
    if (!(error instanceof CircuitOpenError)) {
      counts.strip.push(GLYPH.failure);
      return;
    }
    counts.saved++;
    counts.strip.push(GLYPH.saved);
    if (counts.announceNextFastFail) {
      counts.announceNextFastFail = false;
      const text = `${error.name}: no request sent, retry in ${Math.round(error.retryAfterMs)} ms`;
      line(elapsed(), "fast-fail", yellow, dim(text));
    }
  }
}

/** One compact line: a glyph per call since the last tally, then the running totals. */
function printTally(counts) {
  const glyphs = counts.strip.join("") + " ".repeat(Math.max(0, 20 - counts.strip.length));
  counts.strip = [];
  const totals = [
    `calls ${String(counts.calls).padStart(3)}`,
    `reached ${String(counts.reached).padStart(3)}`,
    `saved ${String(counts.saved).padStart(3)}`,
    `failures ${String(counts.failures).padStart(2)}`,
  ].join(dim(" · "));
  line(elapsed(), "tally", dim, `${glyphs}  ${totals}`);
}

/** Calls the server every 50 ms for RUN_MS; resolves once every call has settled. */
function runApp(cb, url, counts) {
  return new Promise((resolve) => {
    const inFlight = new Set();
    let phase;
    let nextTally = TALLY_EVERY_MS;
    const tick = () => {
      const now = elapsed();
      if (now >= RUN_MS) {
        clearInterval(timer);
        Promise.allSettled(inFlight).then(() => {
          printTally(counts); // the last second, once its calls have settled
          resolve();
        });
        return;
      }
      if (now >= nextTally) {
        printTally(counts);
        nextTally += TALLY_EVERY_MS;
      }
      if (phaseAt(now) !== phase) {
        phase = phaseAt(now);
        line(now, "server", bold, bold(phase.label));
      }
      const pending = call(cb, url, counts).finally(() => inFlight.delete(pending));
      inFlight.add(pending);
    };
    const timer = setInterval(tick, CALL_EVERY_MS);
    tick();
  });
}

// ---------------------------------------------------------------------------------------------
// Start, run, sum up, shut down.

function printHeader(origin) {
  const { failureThreshold, openMs, jitter, maxOpenMs, timeoutMs } = BREAKER_OPTIONS;
  console.log(bold("cbfetch demo: a circuit breaker in front of a flaky server"));
  console.log(dim(`server   ${origin}, one call every ${CALL_EVERY_MS} ms for ${RUN_MS / 1000} s`));
  const percent = jitter * 100;
  console.log(
    dim(`breaker  trips after ${failureThreshold} failures in a row (timeout ${timeoutMs} ms)`),
  );
  console.log(
    dim(`         opens ${openMs} ms ±${percent} %, ×2 per failed probe, at most ${maxOpenMs} ms`),
  );
  console.log(dim("         a Retry-After is honoured exactly, without jitter"));
  console.log(
    dim("tally    ") +
      `${GLYPH.ok} ${dim("reached the server, OK")}  ${GLYPH.failure} ${dim("failed")}  ` +
      `${GLYPH.saved} ${dim("saved: failed fast, never sent")}`,
  );
  console.log();
}

function printSummary(cb, origin, counts) {
  // Pad before colouring: escape codes have a length but no width.
  const row = (label, value, note = "", colour = String) => {
    const text = `  ${label.padEnd(33)} ${colour(String(value).padStart(9))}`;
    console.log(note === "" ? text : `${text}  ${dim(note)}`);
  };
  const finalState = cb.state(origin);
  const kinds = [...counts.failureKinds].map(([kind, n]) => `${n} × ${kind}`).join(", ");
  const [stats] = cb.snapshot();
  const balanced = counts.calls === counts.reached + counts.saved;

  console.log();
  console.log(bold(`Summary after ${(elapsed() / 1000).toFixed(1)} s`));
  row("calls made by the app", counts.calls);
  row("requests that reached the server", counts.reached);
  row("requests saved by the breaker", counts.saved, "failed fast with CircuitOpenError");
  row("failures seen", counts.failures, kinds);
  row("final state", finalState, "", STATE_COLOUR[finalState]);
  console.log(
    dim(
      `  breaker's own counters (cb.snapshot()): ${stats.successes} successes,` +
        ` ${stats.failures} failures, ${stats.rejections} rejections`,
    ),
  );
  const check = `${counts.calls} = ${counts.reached} + ${counts.saved}`;
  console.log(
    `  check: calls = reached + saved  →  ${check}  ${balanced ? green("✓") : red("✗ mismatch")}`,
  );
  return balanced;
}

async function main() {
  setTimeout(() => {
    console.error(red(`demo did not finish within ${HANG_LIMIT_MS / 1000} s`));
    process.exit(1);
  }, HANG_LIMIT_MS).unref();

  const counts = {
    calls: 0,
    reached: 0,
    saved: 0,
    failures: 0,
    failureKinds: new Map(),
    strip: [],
    announceNextFastFail: false,
  };
  const server = await startServer(counts);
  const origin = `http://127.0.0.1:${server.address().port}`;
  const seen = { retryAfter: null };
  const cb = createCbFetch({ ...BREAKER_OPTIONS, fetch: fetchNotingRetryAfter(seen) });
  watchBreaker(cb, counts, seen);

  printHeader(origin);
  startedAt = performance.now();
  await runApp(cb, `${origin}/items`, counts);
  const balanced = printSummary(cb, origin, counts);

  await cb.close();
  server.close();
  server.closeAllConnections?.();
  process.exitCode = balanced ? 0 : 1;
}

await main();
