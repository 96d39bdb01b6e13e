import { expect } from "vitest";
import { type CbFetch, isCircuitOpenError, isRefusal, refusalOf } from "../../src/index.js";
import { respond, type TestServer } from "../helpers/server.js";

/** What a client's call gave: its value, or what it threw. */
export type Settled = { value: unknown } | { error: unknown };

export const settle = (promise: Promise<unknown>): Promise<Settled> =>
  promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );

/** The calls `cb` refused so far (its `reject` events): one per call made into an open circuit. */
export function refusals(cb: CbFetch): { readonly count: number; readonly errors: unknown[] } {
  const errors: unknown[] = [];
  cb.addEventListener("reject", (event) => errors.push(event.error));
  return {
    errors,
    get count() {
      return errors.length;
    },
  };
}

/**
 * Requests that reach a dead API (503) before an instance made with `{ retry: 2 }` (the
 * recipes' instance: `failureThreshold` 5) opens its circuit, when the app calls twice: 3
 * attempts, then 2 more, and the 6th attempt is refused inside cbfetch's own retry loop.
 * `test/clients/axios.test.ts` checks that this is what two plain `cb(url)` calls make: the
 * clients trip the circuit as fetch does.
 */
export const HITS_TO_TRIP = 5;

/**
 * The recipe's contract against a real server that fails: `ask()` makes one call the way the
 * app does. Two calls trip the circuit as under fetch (their failures are not refusals); then
 * each of three calls is refused without reaching the server, exactly once (the client retried
 * no refusal), and the app recognises the refusal in what the client threw, with its
 * `retryAfterMs`. Returns what the three refused calls threw.
 */
export async function tripsThenRefuses(
  server: TestServer,
  cb: CbFetch,
  ask: () => Promise<unknown>,
): Promise<unknown[]> {
  server.handle(respond(503, "down"));
  const before = server.hits;
  for (let call = 0; call < 2; call++) {
    const outcome = await settle(ask());
    if ("error" in outcome) expect(isRefusal(outcome.error), String(outcome.error)).toBe(false);
  }
  expect(server.hits - before).toBe(HITS_TO_TRIP);
  expect(cb.state(server.origin)).toBe("open");

  const refused = refusals(cb);
  const thrown: unknown[] = [];
  for (let call = 0; call < 3; call++) {
    const outcome = await settle(ask());
    expect(outcome).toHaveProperty("error");
    thrown.push((outcome as { error: unknown }).error);
  }
  expect(server.hits - before).toBe(HITS_TO_TRIP); // refused calls reach no server
  expect(refused.count).toBe(3); // and the client did not retry them
  for (const error of thrown) {
    expect(isCircuitOpenError(error)).toBe(true);
    expect(refusalOf(error)).toBe(refused.errors[thrown.indexOf(error)]);
    expect(refusalOf(error)!.retryAfterMs).toBeGreaterThan(20_000); // default openMs 30 s ± 20 %
  }
  return thrown;
}
