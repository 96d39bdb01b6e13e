/**
 * cbfetch/otel: OpenTelemetry metrics and trace events for a cbfetch instance. Needs
 * `@opentelemetry/api` (an optional peer dependency) and nothing else.
 *
 * @packageDocumentation
 */
import {
  type Attributes,
  type MeterProvider,
  metrics,
  type ObservableResult,
  trace,
  type TracerProvider,
} from "@opentelemetry/api";
import type { CircuitState } from "../breaker/types.js";
import type { CircuitEvent } from "../fetch/events.js";
import type { CbFetch } from "../fetch/types.js";
import { type TransitionLine, watchTransitions } from "../log/transitions.js";

/** Options of {@link instrument}. */
export interface InstrumentOptions {
  /**
   * Where the metrics go.
   * @default the global MeterProvider (`metrics.getMeterProvider()`)
   */
  meterProvider?: MeterProvider;
  /**
   * Where refusals and transitions go (span events, or a short span for a transition outside
   * any span).
   * @default the global TracerProvider (`trace.getTracerProvider()`)
   */
  tracerProvider?: TracerProvider;
}

/** OpenTelemetry's advice for `http.client.request.duration`, in seconds. */
const DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];
const STATE_VALUES: Record<CircuitState, number> = { closed: 0, "half-open": 1, open: 2 };
/** Attributes by key are cached up to this many keys, then the cache starts again. */
const MAX_CACHED_KEYS = 1000;

/**
 * Reports `cb` to OpenTelemetry until the returned `stop()` is called:
 * - `cbfetch.calls` (counter): every guarded call once, by `cbfetch.outcome` (`success`,
 *   `failure` with `cbfetch.failure.kind`, `rejected` (circuit open or bulkhead full),
 *   `throttled` (refused by `throttle`), `ignored`);
 * - `cbfetch.circuit.state` (observable gauge, per key): 0 closed, 1 half-open, 2 open;
 * - `cbfetch.retries` (counter): the instance's `retry` events, when retry is on;
 * - `http.client.request.duration` (histogram, s): calls that reached the network;
 * - on the caller's active span, an event `cbfetch.rejected` per refused call, and an event
 *   `cbfetch.transition` per transition (a short span of that name outside any span).
 * Attributes come from the key only (`server.address`, `server.port`, `url.scheme` when it is
 * an origin; `cbfetch.key` when `keyOf` made it something else), never from a path, query or
 * credential. From now on the instance also times
 * its calls, so its breakers' `stats` carry the error rate and latency.
 */
export function instrument(cb: CbFetch, options: InstrumentOptions = {}): () => void {
  const timing = cb._timeCalls();
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter("cbfetch");
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer("cbfetch");
  const calls = meter.createCounter("cbfetch.calls", {
    unit: "{call}",
  });
  const retries = meter.createCounter("cbfetch.retries", {
    unit: "{retry}",
  });
  const duration = meter.createHistogram("http.client.request.duration", {
    unit: "s",
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  });
  const circuitState = meter.createObservableGauge("cbfetch.circuit.state");

  const cache = new Map<string, Attributes>();
  const attributesOf = (key: string): Attributes => {
    let attributes = cache.get(key);
    if (attributes === undefined) {
      if (cache.size >= MAX_CACHED_KEYS) cache.clear();
      attributes = keyAttributes(key);
      cache.set(key, attributes);
    }
    return attributes;
  };

  // Ignored outcomes fire no event: they are counted from the breakers' `ignored` counters,
  // each time metrics are collected (the gauge's callback runs before counters are read).
  let ignored = new Map(cb.snapshot().map((row) => [row.key, row.ignored]));
  const observe = (result: ObservableResult) => {
    const seen = new Map<string, number>();
    for (const row of cb.snapshot()) {
      const attributes = attributesOf(row.key);
      result.observe(STATE_VALUES[row.state], attributes);
      seen.set(row.key, row.ignored);
      const before = ignored.get(row.key) ?? 0;
      // Fewer than before: the breaker was reset (or evicted and made again) since.
      const added = row.ignored >= before ? row.ignored - before : row.ignored;
      if (added > 0) calls.add(added, { ...attributes, "cbfetch.outcome": "ignored" });
    }
    ignored = seen;
  };
  circuitState.addCallback(observe);

  const onSuccess = (event: CircuitEvent) => {
    const attributes = attributesOf(event.key);
    calls.add(1, { ...attributes, "cbfetch.outcome": "success" });
    if (event.durationMs !== undefined) duration.record(event.durationMs / 1000, attributes);
  };
  const onFailure = (event: CircuitEvent) => {
    const attributes = attributesOf(event.key);
    const kind = event.kind ?? "manual";
    calls.add(1, { ...attributes, "cbfetch.outcome": "failure", "cbfetch.failure.kind": kind });
    if (event.durationMs === undefined) return; // an expired probe: it never came back
    const errorType = errorTypeOf(event);
    duration.record(
      event.durationMs / 1000,
      errorType === undefined ? attributes : { ...attributes, "error.type": errorType },
    );
  };
  const onReject = (event: CircuitEvent) => {
    const attributes = attributesOf(event.key);
    const errorName = (event.error as { name?: unknown } | undefined)?.name;
    const throttled = errorName === "ThrottledError";
    calls.add(1, { ...attributes, "cbfetch.outcome": throttled ? "throttled" : "rejected" });
    trace.getActiveSpan()?.addEvent("cbfetch.rejected", {
      ...attributes,
      "error.type": throttled
        ? "throttled"
        : errorName === "BulkheadFullError"
          ? "bulkhead_full"
          : "circuit_open",
      "cbfetch.circuit.state": event.state,
      ...(event.retryAt === undefined ? {} : { "cbfetch.retry_at": event.retryAt }),
    });
  };
  const onRetry = (event: Event) => {
    const { key, reason } = event as Event & { key?: unknown; reason?: unknown };
    if (typeof key !== "string") return;
    const attributes = attributesOf(key);
    retries.add(
      1,
      typeof reason === "string" ? { ...attributes, "cbfetch.retry.reason": reason } : attributes,
    );
  };
  const onTransition = (line: TransitionLine) => {
    const attributes: Attributes = {
      ...attributesOf(line.key),
      "cbfetch.circuit.from": line.from,
      "cbfetch.circuit.to": line.to,
      "cbfetch.transition.reason": line.reason,
      ...(line.retryAt === undefined ? {} : { "cbfetch.retry_at": line.retryAt }),
    };
    const active = trace.getActiveSpan();
    if (active?.isRecording()) active.addEvent("cbfetch.transition", attributes);
    else tracer.startSpan("cbfetch.transition", { attributes }).end();
  };

  cb.addEventListener("success", onSuccess);
  cb.addEventListener("failure", onFailure);
  cb.addEventListener("reject", onReject);
  // Retry (when on) is an event type this version does not name yet.
  cb.events.addEventListener("retry", onRetry);
  const stopTransitions = watchTransitions(cb, onTransition);
  return () => {
    cb.removeEventListener("success", onSuccess);
    cb.removeEventListener("failure", onFailure);
    cb.removeEventListener("reject", onReject);
    cb.events.removeEventListener("retry", onRetry);
    stopTransitions();
    circuitState.removeCallback(observe);
    timing.stop(); // no clock read per call on its account any more
  };
}

/**
 * `server.address`, `server.port` and `url.scheme` of a key that is an http(s) origin (the
 * default key); `cbfetch.key` for a key of `keyOf` that is no origin, so each key keeps a
 * series of its own (as many as the instance's `maxBreakers` at most).
 */
function keyAttributes(key: string): Attributes {
  let url: URL | undefined;
  try {
    url = new URL(key);
  } catch {}
  if (url?.origin !== key || (url.protocol !== "http:" && url.protocol !== "https:")) {
    return { "cbfetch.key": key };
  }
  const scheme = url.protocol.slice(0, -1);
  return {
    "server.address": url.hostname,
    "server.port": url.port === "" ? (scheme === "https" ? 443 : 80) : Number(url.port),
    "url.scheme": scheme,
  };
}

/**
 * OpenTelemetry's `error.type` of a failed call that came back: its status code, `timeout`
 * for cbfetch's own timeout, or the error's name for a network error. A slow call got its
 * response: none.
 */
function errorTypeOf(event: CircuitEvent): string | undefined {
  if (event.kind === "status") return String(event.status);
  if (event.kind === "timeout") return "timeout";
  if (event.kind !== "error") return undefined;
  const name = (event.error as { name?: unknown } | undefined)?.name;
  return typeof name === "string" && name !== "" ? name : "_OTHER";
}
