// Helpers shared by the bench sections: statistics, formatting, the DESIGN §6 verdicts.
import os from "node:os";

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The p-th percentile (0–100) of `values`, nearest rank. */
export function percentile(values, p) {
  const sorted = Float64Array.from(values).sort();
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

/** Median over rounds of f(a's value, b's value) in the same round: a paired comparison. */
export function paired(a, b, f) {
  return median(a.map((value, round) => f(value, b[round])));
}

export const fmt = (n, digits = 0) => n.toFixed(digits);
export const signed = (n, digits = 0) => `${n > 0 ? "+" : ""}${fmt(n, digits)}`;
export const verdict = (ok) => (ok ? "meets" : "misses");

/** A markdown table: `header` is a list of column titles, a title ending in ">" aligns right. */
export function table(header, rows) {
  const titles = header.map((h) => h.replace(/>$/, ""));
  const rule = header.map((h) => (h.endsWith(">") ? "---:" : "---"));
  const line = (cells) => `| ${cells.join(" | ")} |`;
  return [line(titles), line(rule), ...rows.map(line)].join("\n");
}

/** "bar … : figure … meets/misses", one line per DESIGN §6 bar. */
export function barLine(what, figure, ok, why) {
  return `bar: ${what}: ${figure}: ${verdict(ok)}${!ok && why ? ` (why: ${why})` : ""}`;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Heap in use after full collections (needs --expose-gc). */
export function heapAfterGc() {
  for (let i = 0; i < 4; i++) globalThis.gc?.();
  return process.memoryUsage().heapUsed;
}

export function machine() {
  return {
    node: process.version,
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.cpus().length,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    date: new Date().toISOString(),
    gcExposed: typeof globalThis.gc === "function",
  };
}

export function machineLine(env) {
  return (
    `node ${env.node}, ${env.cpu} (${env.cores} cores), load average ${env.loadAverage.join(" ")}, ` +
    `${env.date}${env.gcExposed ? "" : " (no --expose-gc: memory figures and gc between runs skipped)"}`
  );
}

/**
 * JSON for `bench/results.json` (git-ignored): 2-space indent, numbers rounded to 0.1
 * (ratios to 0.001), short arrays of numbers on one line.
 */
export function toJson(data) {
  const round = (key, value) => {
    if (typeof value !== "number" || Number.isInteger(value)) return value;
    const scale = /ratio/i.test(key) ? 1000 : 10;
    return Math.round(value * scale) / scale;
  };
  const text = JSON.stringify(data, round, 2).replace(
    /^( *)("[^"]*": )\[\n([\d.,\s-]+)\n *\]/gm,
    (block, indent, label, items) => {
      const line = `${indent}${label}[${items.trim().split(/,\s*/).join(", ")}]`;
      return line.length <= 100 ? line : block;
    },
  );
  return `${text}\n`;
}

/**
 * A distribution-free 95 % confidence interval of the median of `values` (order statistics
 * from the binomial distribution): [low, high].
 */
export function medianInterval(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  let k = 0; // largest k with P(Binomial(n, 1/2) < k) <= 0.025
  let cumulative = 0;
  let term = 0.5 ** n; // P(X = 0)
  while (k < n && cumulative + term <= 0.025) {
    cumulative += term;
    term = (term * (n - k)) / (k + 1);
    k++;
  }
  return k === 0 ? [sorted[0], sorted[n - 1]] : [sorted[k - 1], sorted[n - k]];
}

/** V8's `%name(value)`, or `undefined` when node runs without `--allow-natives-syntax`. */
function v8Native(name, value) {
  try {
    return new Function("v", `return %${name}(v)`)(value);
  } catch {
    return undefined;
  }
}

/**
 * V8's tier for `fn` ("TurboFan", "Maglev", "baseline", "interpreted"), or "unknown" when node
 * runs without `--allow-natives-syntax` (the bench script passes it).
 */
export function v8Tier(fn) {
  const status = v8Native("GetOptimizationStatus", fn);
  if (status === undefined) return "unknown";
  // Bits of V8's OptimizationStatus (src/runtime/runtime.h).
  if (status & 16) return "TurboFan";
  if (status & 256) return "Maglev";
  if (status & 32768) return "baseline";
  return "interpreted";
}

/** Whether V8 keeps `object` in fast mode (not dictionary properties); undefined without natives. */
export function hasFastProperties(object) {
  return v8Native("HasFastProperties", object);
}
