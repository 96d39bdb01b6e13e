import type { Breaker } from "../breaker/breaker.js";
import type { Permit } from "../breaker/permit.js";
import { type StreamMark, streamBefore } from "../outcome/mistakes.js";
import { retryAfterMs } from "../outcome/status.js";
import { type FetchInput, initWith, signalOf } from "../request.js";
import type { Core } from "./core.js";

/** Sends a request through a breaker that admitted it; the outcome settles `permit`. */
export function send(
  core: Core,
  breaker: Breaker,
  permit: Permit,
  url: string,
  input: FetchInput,
  init: RequestInit | undefined,
): Promise<Response> {
  const start = core.timed ? core.config.breaker.clock.now() : 0;
  const Timeout = core.parts.timeout?.Timeout;
  const timeoutMs = core.config.timeoutMs;
  let timeout: InstanceType<NonNullable<typeof Timeout>> | undefined;
  let stream: StreamMark | undefined;
  let pending: Promise<Response>;
  try {
    // Only a call with more than a string URL can have a stream body to note.
    if (init !== undefined || typeof input !== "string") stream = streamBefore(input, init);
    if (Timeout === undefined || timeoutMs === undefined) pending = core.fetch()(input, init);
    else {
      timeout = new Timeout(breaker.key, timeoutMs, signalOf(input, init), core.deadlines);
      pending = core.fetch()(input, initWith(init, timeout.fields(input, init)));
    }
  } catch (error) {
    pending = Promise.reject(error); // a fetch that throws synchronously still rejects
  }
  // `.then` rather than an async function: one promise less per call, measurably cheaper.
  return pending.then(
    (response) => {
      timeout?.settle(response);
      answered(core, breaker, permit, response, start);
      return response;
    },
    (error: unknown) => {
      timeout?.settle();
      const timedOut = timeout?.fired === true || ownDeadline(core, input, init);
      return rejected(core, breaker, permit, url, input, init, error, timedOut, stream, start);
    },
  );
}

/**
 * The origin answered: the status decides (`isFailure`), a 429/503 `Retry-After` opens the
 * circuit until then, a slow call counts with `slowCallMs`. Events fire only for outcomes the
 * breaker counted, so they add up to its stats.
 */
function answered(
  core: Core,
  breaker: Breaker,
  permit: Permit,
  response: Response,
  start: number,
): void {
  const { config, events } = core;
  const durationMs = core.timed ? config.breaker.clock.now() - start : undefined;
  let failed: boolean;
  try {
    failed = config.isFailure(response);
  } catch (error) {
    permit.release(); // the caller's isFailure threw: not the origin's doing
    throw error;
  }
  const slowCallMs = config.breaker.slowCallMs;
  if (failed) {
    // Read only now: each of a Response's getters is costly in undici (a brand check).
    const { status } = response;
    let retryAt: number | undefined;
    if (config.respectRetryAfter && (status === 429 || status === 503)) {
      const delay = retryAfterMs(response.headers.get("retry-after"), Date.now());
      if (delay !== undefined) retryAt = config.breaker.clock.now() + delay;
    }
    if (permit.failure("status", retryAt)) {
      core.emitFailure(breaker, { kind: "status", status, durationMs, retryAt });
    }
    // With `slowCallMs`, calls are always timed.
  } else if (slowCallMs !== undefined && (durationMs as number) > slowCallMs) {
    const { status } = response;
    if (permit.failure("slow")) core.emitFailure(breaker, { kind: "slow", status, durationMs });
  } else if (permit.success() && events.wants("success")) {
    events.emit("success", { key: breaker.key, state: breaker.state, durationMs });
  }
}

/**
 * fetch rejected: the caller gets its error as fetch gave it, at once; the permit settles when
 * the judge has decided whether it counts (at once, unless the network is being checked).
 */
function rejected(
  core: Core,
  breaker: Breaker,
  permit: Permit,
  url: string,
  input: FetchInput,
  init: RequestInit | undefined,
  error: unknown,
  timedOut: boolean,
  stream: StreamMark | undefined,
  start: number,
): never {
  const durationMs = core.timed ? core.config.breaker.clock.now() - start : undefined;
  const settle = (counts: boolean) => {
    const kind = timedOut ? "timeout" : "error";
    if (!counts)
      permit.release(); // not the origin's doing
    else if (permit.failure(kind)) core.emitFailure(breaker, { kind, error, durationMs });
  };
  const verdict = core.judge.counts(breaker, url, input, init, timedOut, stream);
  if (typeof verdict === "boolean") settle(verdict);
  else void verdict.then(settle);
  throw error;
}

/** Whether the signal the call was given is one of cbfetch's deadlines that fired. */
function ownDeadline(core: Core, input: FetchInput, init: RequestInit | undefined): boolean {
  try {
    const signal = signalOf(input, init);
    return signal !== undefined && core.deadlines.has(signal);
  } catch {
    return false; // an init that throws: the caller's
  }
}
