// The overload section's report (bench/overload.mjs): the figures table, DESIGN §6's bar lines,
// the text chart of goodput over time, and the model's figures for the same scenario.
import { createBreaker } from "../dist/index.js";
import { RetryBudgets } from "../dist/retry/budget.js";
import { barLine, fmt, table } from "./lib.mjs";
import { modelClients, SCENARIO, simulate, summarize } from "./overload-model.mjs";

const S = SCENARIO;
const LENGTH = S.overloadMs + S.outageMs + S.recoveryMs;
/** The throttle's `k` the bar is stated in (DESIGN's default). */
const K = 2;

/** One line per client, a character per slice: goodput as a block from ▁ (0) to █ (≥ C). */
export function chart(rows) {
  const levels = " ▁▂▃▄▅▆▇█";
  const width = Math.max(...rows.map((row) => row.name.length)) + 2;
  const seconds = LENGTH / 1000;
  let ruler = "";
  for (let second = 0; second < seconds; second += 10) ruler += `${second} s`.padEnd(10);
  const phase = (ms, label, fill) => {
    const n = ms / S.sliceMs;
    return `|${label}`.padEnd(n, fill).slice(0, n);
  };
  const lines = [
    `${"".padEnd(width)}${ruler}`,
    `${"".padEnd(width)}${phase(S.overloadMs, ` ${S.load} × C offered `, "-")}${phase(S.outageMs, " outage", " ")}${phase(S.recoveryMs, ` capacity back, still ${S.load} × C offered `, "-")}`,
  ];
  for (const row of rows) {
    const cells = row.goodputBySlice
      ? row.goodputBySlice.map((g) => levels[Math.max(0, Math.min(8, Math.round(g * 8)))]).join("")
      : `– ${row.why}`;
    lines.push(`${row.name.padEnd(width)}${cells}`);
  }
  return lines.join("\n");
}

/** The model's figures for the same scenario (or `scenario`), on cbfetch's built parts. */
export function model(seed, scenario = SCENARIO) {
  const c = modelClients({ createBreaker, RetryBudgets });
  const rows = [
    ["raw fetch", c.raw],
    ["ky retry: 2", c.kyRetry2],
    ["cbfetch defaults (breaker)", c.breaker()],
    ["cbfetch throttle", c.throttle()],
    ["cbfetch throttle + retry: 2 (budget)", c.throttle({ retry: { limit: 2 } })],
    ["throttle, k = 1.5", c.throttle({ throttle: { k: 1.5 } })],
    ["throttle, k = 3", c.throttle({ throttle: { k: 3 } })],
    ["throttle, windowMs 5000", c.throttle({ throttle: { windowMs: 5000 } })],
    ["throttle, openMs 5000", c.throttle({ breaker: { openMs: 5000 } })],
    ["throttle, breaker never opens", c.throttle({ breaker: { failureThreshold: 1e9 } })],
  ];
  return (scenario === SCENARIO ? rows : rows.slice(0, 5)).map(([name, make]) => ({
    name,
    ...summarize(simulate(make, { seed, scenario }), scenario),
  }));
}

const seconds = (value) => (value === undefined ? "never" : fmt(value));
/** Attempts per served request: "∞" when attempts reached an upstream that served none. */
const ratio = (value) => (Number.isFinite(value) ? fmt(value, 2) : value > 0 ? "∞" : "–");

export function figuresTable(rows) {
  return table(
    [
      "client",
      "offered /s>",
      "attempts per served>",
      "goodput, share of C>",
      "trips /min>",
      "transitions>",
      "back to ≥ 90 %, s>",
      "held from, s>",
    ],
    rows.map((r) =>
      r.why
        ? [`${r.name}: skipped, ${r.why}`, "–", "–", "–", "–", "–", "–", "–"]
        : [
            r.name,
            fmt(r.offeredPerSecond),
            ratio(r.attemptsPerServed),
            fmt(r.goodput, 3),
            fmt(r.tripsPerMinute, 1),
            r.transitions,
            seconds(r.recoverySeconds),
            seconds(r.heldSeconds),
          ],
    ),
  );
}

export function bars(rows) {
  const throttle = rows.find((r) => r.name === "cbfetch throttle");
  const plain = rows.find((r) => r.name === "cbfetch defaults");
  const what = `overload, cbfetch throttle at ${S.load} × C`;
  if (throttle.why) {
    console.log(`bar: ${what}: not measured: \`throttle\` ${throttle.why}`);
    return;
  }
  console.log(
    barLine(
      `${what}: attempts ≤ (k + 0.1) × served, goodput ≥ 95 %, no flapping`,
      `${fmt(throttle.attemptsPerServed, 2)} attempts per served, goodput ${fmt(throttle.goodput, 3)}, ${throttle.transitions} transitions`,
      throttle.attemptsPerServed <= K + 0.1 &&
        throttle.goodput >= 0.95 &&
        throttle.transitions === 0,
    ),
  );
  const back = throttle.recoverySeconds;
  console.log(
    barLine(
      "after the outage, back to ≥ 90 % goodput no later than cbfetch defaults",
      `${seconds(back)} s, cbfetch defaults ${seconds(plain.recoverySeconds)} s`,
      back !== undefined && (plain.recoverySeconds === undefined || back <= plain.recoverySeconds),
    ),
  );
}
