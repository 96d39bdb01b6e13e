// Section 6: retry amplification (DESIGN §6: with `retry` on, attempts per logical request
// against a dead or 50 %-failing origin stay within the budget, ≤ 1.2 with defaults, where
// ky's retry makes 3).
//
// Method. A real node:http server on 127.0.0.1 in this process (Node's global fetch, undici,
// keep-alive), answering 503 to every request (dead) or to each request with probability 1/2
// (a seeded generator, reset per row, so every client sees the same kind of sequence). Per
// row, a fresh client makes LOGICAL requests one after another (well within the budget's 10 s
// window), reads each body, and catches each failure; the server counts the attempts that
// reached it. Clients, each asked for 2 retries with waits of about a millisecond so the section
// runs in seconds:
// - ky alone: plain ky 2, `retry: { limit: 2, delay: n => 2^(n-1), jitter: true }` on the raw
//   fetch (ky's full jitter on a 1 ms base);
// - cbfetch: `createCbFetch({ retry: { limit: 2, delayMs: 1 } })`: the budget on (defaults:
//   3 + 20 % of first attempts per 10 s) or off (`budget: false`);
// - cbfetch/ky: `createKy(createCbFetch(), { retry: ky's as above })`: ky's retries on the
//   instance's budget (the default budget: the instance has no `retry`);
// each with the default breaker (it trips after 5 consecutive failures, then fails fast for
// 30 s: attempts drop far below 1) and with the breaker kept from tripping
// (`failureThreshold: 1e9`), where the budget alone bounds the retries.
// "Time to fail" is the median time a failed logical request took until its caller got the
// failure (a failing response, an error, or a CircuitOpenError).
import { createServer } from "node:http";
import ky from "ky";
import { createCbFetch } from "../dist/index.js";
import { createKy } from "../dist/ky/index.js";
import { barLine, fmt, median, table } from "./lib.mjs";

const LOGICAL = 1000;
const LIMIT = 2;
const BAR = 1.2;
const noTrip = { failureThreshold: 1e9 };
const kyRetry = { limit: LIMIT, delay: (n) => 2 ** (n - 1), jitter: true };
const cbRetry = { limit: LIMIT, delayMs: 1 };

/** A seeded generator in [0, 1) (mulberry32). */
function seeded(seed) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function startOrigin() {
  const origin = { hits: 0, failRate: 1, random: seeded(1) };
  const server = createServer((req, res) => {
    origin.hits++;
    req.resume();
    const fail = origin.random() < origin.failRate;
    res.writeHead(fail ? 503 : 200, { "content-type": "text/plain" });
    res.end(fail ? "unavailable" : "ok");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin.url = `http://127.0.0.1:${server.address().port}/items`;
  origin.close = () => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  };
  return origin;
}

/** A fetch-style call that settles to whether the logical request succeeded (body read). */
const viaFetch = (fetchFn) => async (url) => {
  const response = await fetchFn(url);
  await response.arrayBuffer();
  return response.ok;
};
const viaKy = (api) => async (url) => {
  await (await api.get(url)).arrayBuffer();
  return true;
};

/** The clients, side by side. */
const CLIENTS = [
  {
    name: "ky alone (raw fetch)",
    make: () => ({ call: viaKy(ky.create({ retry: kyRetry })) }),
  },
  {
    name: "cbfetch, budget (defaults)",
    make: () => instance({ retry: cbRetry }),
  },
  {
    name: "cbfetch, budget: false",
    make: () => instance({ retry: { ...cbRetry, budget: false } }),
  },
  {
    name: "cbfetch/ky, budget (defaults)",
    make: () => kyOn(createCbFetch()),
  },
  {
    name: "cbfetch, budget, breaker kept from tripping",
    make: () => instance({ ...noTrip, retry: cbRetry }),
  },
  {
    name: "cbfetch, budget: false, breaker kept from tripping",
    make: () => instance({ ...noTrip, retry: { ...cbRetry, budget: false } }),
  },
  {
    name: "cbfetch/ky, budget, breaker kept from tripping",
    make: () => kyOn(createCbFetch(noTrip)),
  },
];

function instance(options) {
  const cb = createCbFetch(options);
  return { call: viaFetch(cb), cb };
}

function kyOn(cb) {
  return { call: viaKy(createKy(cb, { retry: kyRetry })), cb };
}

/** LOGICAL requests of one client against the origin at `failRate`. */
async function measure(origin, client, failRate) {
  const { call, cb } = client.make();
  origin.failRate = failRate;
  origin.random = seeded(16);
  const hitsBefore = origin.hits;
  const timesToFail = [];
  const started = performance.now();
  for (let i = 0; i < LOGICAL; i++) {
    const begin = performance.now();
    const ok = await call(origin.url).catch(() => false);
    if (!ok) timesToFail.push(performance.now() - begin);
  }
  const seconds = (performance.now() - started) / 1000;
  const attempts = origin.hits - hitsBefore;
  const row = cb?.snapshot()[0];
  await cb?.close();
  return {
    client: client.name,
    origin: failRate === 1 ? "dead" : "50 % failing",
    attempts,
    attemptsPerRequest: attempts / LOGICAL,
    retries: row?.retries,
    failed: timesToFail.length,
    medianTimeToFailMs: timesToFail.length > 0 ? median(timesToFail) : undefined,
    breaker: row?.state,
    seconds,
  };
}

function print(rows) {
  console.log(
    table(
      [
        "origin",
        "client (2 retries asked)",
        "attempts / logical request>",
        "failed requests>",
        "median time to fail, ms>",
        "breaker at end",
        "run, s>",
      ],
      rows.map((r) => [
        r.origin,
        r.client,
        fmt(r.attemptsPerRequest, 3),
        r.failed,
        r.medianTimeToFailMs === undefined ? "–" : fmt(r.medianTimeToFailMs, 2),
        r.breaker ?? "–",
        fmt(r.seconds, 1),
      ]),
    ),
  );
  console.log("");
  const pick = (client, origin) => rows.find((r) => r.client === client && r.origin === origin);
  const figures = (client) =>
    ["dead", "50 % failing"].map((origin) => pick(client, origin).attemptsPerRequest);
  const [defaultsDead, defaultsHalf] = figures("cbfetch, budget (defaults)");
  const [kyDead, kyHalf] = figures("ky alone (raw fetch)");
  const [aloneDead, aloneHalf] = figures("cbfetch, budget, breaker kept from tripping");
  const bound = 1 + (3 + 0.2 * LOGICAL) / LOGICAL;
  console.log(
    `the budget alone (breaker kept from tripping): ${fmt(aloneDead, 3)} dead, ${fmt(aloneHalf, 3)} 50 % failing; ` +
      `its bound for ${LOGICAL} requests in one 10 s window is 1 + (3 + 20 % × ${LOGICAL}) / ${LOGICAL} = ${fmt(bound, 3)}: ` +
      `within the budget, ${fmt(bound - BAR, 3)} over 1.2 (minRetries' 3 per window: 1.2 + 3/N for N requests)`,
  );
  const worst = Math.max(defaultsDead, defaultsHalf);
  console.log(
    barLine(
      `retry amplification ≤ ${BAR} attempts per logical request (dead or 50 %-failing origin, defaults), where ky's retry makes 3`,
      `${fmt(defaultsDead, 3)} dead, ${fmt(defaultsHalf, 3)} 50 % failing (the breaker trips; ky alone ${fmt(kyDead, 2)} and ${fmt(kyHalf, 2)})`,
      worst <= BAR,
      `the budget allows ${fmt(bound, 3)} for ${LOGICAL} requests`,
    ),
  );
}

export async function run() {
  console.log("## 6. Retry amplification: attempts per logical request, time to fail");
  console.log(
    `${LOGICAL} logical requests one after another per row, 2 retries asked, a real node:http ` +
      "server on 127.0.0.1 (dead: 503 always; 50 % failing: 503 with probability 1/2, seeded); " +
      "each row a fresh client",
  );
  console.log("");
  const origin = await startOrigin();
  const rows = [];
  try {
    for (const failRate of [1, 0.5]) {
      for (const client of CLIENTS) rows.push(await measure(origin, client, failRate));
    }
  } finally {
    await origin.close();
  }
  print(rows);
  return { logicalRequests: LOGICAL, retriesAsked: LIMIT, rows };
}
