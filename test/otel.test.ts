import { type Attributes, context, type Span } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  type DataPoint,
  MeterProvider,
  MetricReader,
  type MetricData,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type CbFetchOptions, CircuitOpenError, createCbFetch } from "../src/index.js";
import { instrument } from "../src/otel/index.js";
import { ManualClock } from "./helpers/clock.js";
import { hang, hangUp, rejection, respond, useServer } from "./helpers/server.js";

// cbfetch/otel with the real OpenTelemetry SDK (metrics read in memory, spans exported in
// memory, context through AsyncLocalStorage as in a Node app) against a real local server.

/** Reads metrics when asked: the SDK's in-memory pull reader. */
class InMemoryReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const server = useServer();
/** Another origin that answers: network errors count only where the network works. */
const elsewhere = useServer();
/** A data point of the main server's origin (the other origin has points of its own). */
const ours = (point: DataPoint<unknown>) =>
  point.attributes["server.port"] === Number(new URL(server.origin).port);
const contextManager = new AsyncLocalStorageContextManager();
beforeAll(() => void context.setGlobalContextManager(contextManager.enable()));
afterAll(() => {
  contextManager.disable();
  context.disable();
});

let reader: InMemoryReader;
let spans: InMemorySpanExporter;
let meterProvider: MeterProvider;
let tracerProvider: BasicTracerProvider;
let clock: ManualClock;
afterEach(async () => {
  await meterProvider.shutdown();
  await tracerProvider.shutdown();
});

function setup(options: CbFetchOptions = {}) {
  reader = new InMemoryReader();
  meterProvider = new MeterProvider({ readers: [reader] });
  spans = new InMemorySpanExporter();
  tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  clock = new ManualClock();
  const cb = createCbFetch({ clock, jitter: 0, failureThreshold: 3, openMs: 1000, ...options });
  const stop = instrument(cb, { meterProvider, tracerProvider });
  const tracer = tracerProvider.getTracer("app");
  /** Runs `work` inside an active span of the app, as a traced request handler would. */
  const inSpan = <T>(work: () => Promise<T>) =>
    tracer.startActiveSpan("app", async (span: Span) => {
      try {
        return await work();
      } finally {
        span.end();
      }
    });
  return { cb, stop, inSpan };
}

/** Every metric of the last collection, by name. */
async function collect(): Promise<Map<string, MetricData>> {
  const { resourceMetrics } = await reader.collect();
  const all = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics);
  return new Map(all.map((metric) => [metric.descriptor.name, metric]));
}

const points = (metric: MetricData | undefined) =>
  (metric?.dataPoints ?? []) as Array<DataPoint<unknown>>;

/** `cbfetch.calls` as `{ "outcome[/kind]": count }`. */
function callsByOutcome(metrics: Map<string, MetricData>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const point of points(metrics.get("cbfetch.calls")).filter(ours)) {
    const { "cbfetch.outcome": outcome, "cbfetch.failure.kind": kind } = point.attributes;
    counts[kind === undefined ? String(outcome) : `${String(outcome)}/${String(kind)}`] =
      point.value as number;
  }
  return counts;
}

const stateOf = (metrics: Map<string, MetricData>) =>
  points(metrics.get("cbfetch.circuit.state"))
    .filter(ours)
    .map((p) => p.value);

/** Every attribute value the collected metrics and exported spans carry. */
function allAttributeValues(metrics: Map<string, MetricData>): unknown[] {
  const sets: Attributes[] = [...metrics.values()].flatMap((m) =>
    points(m).map((p) => p.attributes),
  );
  for (const span of spans.getFinishedSpans()) {
    if (span.name === "app") sets.push(...span.events.map((e) => e.attributes ?? {}));
    else sets.push(span.attributes);
  }
  return sets.flatMap((attributes) => Object.values(attributes));
}

describe("cbfetch/otel with the OpenTelemetry SDK", () => {
  it("counts a trip and recovery exactly by outcome and kind; the gauge follows the state", async () => {
    const { cb, inSpan } = setup();
    const url = (path: string) => server.url(path);
    await inSpan(async () => {
      server.handle(respond(200));
      await cb(url("/items?id=1"));
      await cb(url("/items?id=2"));
      server.handle(respond(503));
      await cb(url("/items?token=secret"));
      await cb(url("/items?token=secret"));
      await cb(elsewhere.url()); // another origin answers: the network works
      server.handle(hangUp);
      await rejection(cb(url("/items/7"))); // a network error: the third failure trips it
      expect(cb.state(url("/"))).toBe("open");
      expect(await rejection(cb(url("/items")))).toBeInstanceOf(CircuitOpenError);
      expect(await rejection(cb(url("/items")))).toBeInstanceOf(CircuitOpenError);
    });
    let metrics = await collect();
    expect(stateOf(metrics)).toEqual([2]);

    clock.advance(1000);
    metrics = await collect();
    expect(stateOf(metrics)).toEqual([1]); // half-open: a probe is due

    await inSpan(async () => {
      server.handle(respond(200));
      await cb(url("/items")); // the probe succeeds
      // The caller's own abort: neither success nor failure.
      server.handle(hang);
      const controller = new AbortController();
      const pending = rejection(cb(url("/slow"), { signal: controller.signal }));
      await new Promise((resolve) => setTimeout(resolve, 20));
      controller.abort();
      await pending;
    });
    metrics = await collect();
    expect(stateOf(metrics)).toEqual([0]);
    expect(callsByOutcome(metrics)).toEqual({
      success: 3,
      "failure/status": 2,
      "failure/error": 1,
      rejected: 2,
      ignored: 1,
    });
    expect(cb.breaker(url("/")).stats).toMatchObject({
      successes: 3,
      failures: 3,
      rejections: 2,
      ignored: 1,
    });

    // The calls that reached the network and came back: 3 successes, 3 failures.
    const durations = points(metrics.get("http.client.request.duration")).filter(ours) as Array<
      DataPoint<{ count: number; buckets: { boundaries: number[] } }>
    >;
    const byError = Object.fromEntries(
      durations.map((p) => [String(p.attributes["error.type"] ?? "none"), p.value.count]),
    );
    expect(byError).toEqual({ none: 3, "503": 2, TypeError: 1 });
    expect(durations[0]?.value.buckets.boundaries).toEqual([
      0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
    ]);
    expect(metrics.get("http.client.request.duration")?.descriptor.unit).toBe("s");
    for (const point of [...durations, ...points(metrics.get("cbfetch.calls")).filter(ours)]) {
      expect(point.attributes).toMatchObject({
        "server.address": "127.0.0.1",
        "server.port": Number(new URL(server.origin).port),
        "url.scheme": "http",
      });
    }
    // No attribute anywhere carries a path, a query or its secret.
    for (const value of allAttributeValues(metrics)) {
      expect(String(value)).not.toMatch(/items|slow|token|secret|\?/);
    }
  });

  it("refused calls and transitions appear in the caller's active trace", async () => {
    const { cb, inSpan } = setup({ failureThreshold: 1 });
    const trippedAt = clock.t;
    server.handle(respond(503));
    await inSpan(async () => {
      await cb(server.url("/a"));
      await rejection(cb(server.url("/b")));
    });
    clock.advance(1000);
    server.handle(respond(200));
    await inSpan(() => cb(server.url("/c")));
    const [first, second] = spans.getFinishedSpans().filter((span) => span.name === "app");
    const events = (span: typeof first): Array<[string, Attributes | undefined]> =>
      (span?.events ?? []).map((event) => [event.name, event.attributes]);
    expect(events(first)).toEqual([
      [
        "cbfetch.transition",
        expect.objectContaining({
          "cbfetch.circuit.from": "closed",
          "cbfetch.circuit.to": "open",
          "cbfetch.transition.reason": "trip",
          "cbfetch.retry_at": trippedAt + 1000,
        }),
      ],
      [
        "cbfetch.rejected",
        expect.objectContaining({
          "error.type": "circuit_open",
          "cbfetch.circuit.state": "open",
          "server.address": "127.0.0.1",
        }),
      ],
    ]);
    expect(
      events(second).map(([name, attributes]) => [name, attributes?.["cbfetch.transition.reason"]]),
    ).toEqual([
      ["cbfetch.transition", "probe-due"],
      ["cbfetch.transition", "probe-succeeded"],
    ]);
    // A transition outside any span (forced, or from another tab): a short span of its own.
    cb.breaker(server.url("/")).forceOpen(5000);
    await Promise.resolve();
    const own = spans.getFinishedSpans().find((span) => span.name === "cbfetch.transition");
    expect(own?.attributes).toMatchObject({
      "cbfetch.circuit.to": "open",
      "cbfetch.transition.reason": "external",
    });
  });

  it("a key of keyOf that is no origin gets no server attributes; retries are counted", async () => {
    const { cb } = setup({ keyOf: () => "payments" });
    server.handle(respond(200));
    await cb(server.url("/pay?card=4242"));
    // cbfetch's retry (being built) fires `retry` events; dispatched here as it would.
    cb.events.dispatchEvent(
      Object.assign(new Event("retry"), {
        key: "payments",
        attempt: 1,
        delayMs: 300,
        reason: "status",
      }),
    );
    const metrics = await collect();
    expect(points(metrics.get("cbfetch.calls")).map((p) => p.attributes)).toEqual([
      { "cbfetch.key": "payments", "cbfetch.outcome": "success" },
    ]);
    expect(points(metrics.get("cbfetch.retries")).map((p) => [p.attributes, p.value])).toEqual([
      [{ "cbfetch.key": "payments", "cbfetch.retry.reason": "status" }, 1],
    ]);
  });

  it("keys of keyOf keep a series each: tenant-a open, tenant-b closed (issue 23.7)", async () => {
    const { cb } = setup({
      keyOf: (request) => `tenant-${new URL(request.url).searchParams.get("t")}`,
    });
    server.handle(respond(503));
    for (let i = 0; i < 3; i++) await cb(server.url("/?t=a"));
    server.handle(respond(200));
    await cb(server.url("/?t=b"));
    const gauge = points((await collect()).get("cbfetch.circuit.state"));
    expect(gauge.map((p) => [p.attributes["cbfetch.key"], p.value])).toEqual([
      ["tenant-a", 2],
      ["tenant-b", 0],
    ]);
  });

  it("stop() also ends the clock reads it turned on (issue 23)", async () => {
    const { cb, stop } = setup();
    let reads = 0;
    const counting = { now: () => (reads++, clock.now()) };
    // A second instance on a clock that counts its readings, instrumented then stopped.
    const plain = createCbFetch({ clock: counting });
    server.handle(respond(200));
    await plain(server.url("/"));
    const untimed = reads;
    await plain(server.url("/"));
    expect(reads - untimed).toBe(0); // a plain instance reads no clock per call
    const stopPlain = instrument(plain, { meterProvider, tracerProvider });
    const before = reads;
    await plain(server.url("/"));
    expect(reads - before).toBeGreaterThan(0); // timed while instrumented
    stopPlain();
    const after = reads;
    await plain(server.url("/"));
    expect(reads - after).toBe(0);
    stop();
    await cb.close();
  });

  it("a throttled call is counted as throttled, and its span event says so", async () => {
    const { cb, inSpan } = setup({ throttle: true, failureThreshold: 1000, random: () => 0.3 });
    let n = 0;
    server.handle((req, res) => respond(n++ % 4 === 0 ? 200 : 503)(req, res));
    let throttled = 0;
    await inSpan(async () => {
      for (let i = 0; i < 40; i++) {
        await cb(server.url("/x")).catch((error: Error) => {
          expect(error.name).toBe("ThrottledError");
          throttled++;
        });
      }
    });
    expect(throttled).toBeGreaterThan(0);
    const counts = callsByOutcome(await collect());
    expect(counts.throttled).toBe(throttled);
    expect(counts.rejected).toBeUndefined();
    expect((counts.success ?? 0) + (counts["failure/status"] ?? 0)).toBe(40 - throttled);
    const events = spans
      .getFinishedSpans()
      .find((span) => span.name === "app")!
      .events.filter((event) => event.name === "cbfetch.rejected");
    expect(events).toHaveLength(throttled);
    expect(events[0]?.attributes).toMatchObject({
      "error.type": "throttled",
      "cbfetch.circuit.state": "closed",
    });
  });

  it("stop() detaches the listeners and the gauge's callback", async () => {
    const { cb, stop } = setup();
    server.handle(respond(200));
    await cb(server.url("/"));
    stop();
    await cb(server.url("/"));
    await cb(server.url("/"));
    const metrics = await collect();
    expect(callsByOutcome(metrics)).toEqual({ success: 1 });
    expect(stateOf(metrics)).toEqual([]);
  });

  it("an instrumented instance's stats carry the error rate and latency", async () => {
    const { cb } = setup();
    await cb._timeCalls().ready; // instrument() switched it on; this waits for the meter's code
    server.handle(respond(500));
    await cb(server.url("/"));
    server.handle(respond(200));
    await cb(server.url("/"));
    expect(cb.breaker(server.url("/")).stats).toMatchObject({
      errorRate: 0.5,
      meanLatencyMs: 0,
      lastLatencyMs: 0,
    });
  });
});
