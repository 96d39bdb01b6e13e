// What every page script of the real-browser tests shares: a call's outcome as plain data
// (Error objects do not survive the trip back to the test), and the store errors an instance
// reported. Each page is bundled on its own; this module goes into each bundle.
import { type CbFetch, CircuitOpenError } from "../../src/index.js";

/** What a call gave: a response, or the error it rejected with. */
export type CallResult =
  | { ok: boolean; status: number }
  | { error: string; message: string; retryAt?: number; retryAfterMs?: number; state?: string };

/** Waits for a call and describes its outcome; reads the body, so the connection is free. */
export async function outcome(call: Promise<Response>): Promise<CallResult> {
  try {
    const response = await call;
    await response.text();
    return { ok: response.ok, status: response.status };
  } catch (error) {
    if (error instanceof CircuitOpenError) {
      const { name, message, retryAt, retryAfterMs, state } = error;
      return { error: name, message, retryAt, retryAfterMs, state };
    }
    return error instanceof Error
      ? { error: error.name, message: error.message }
      : { error: typeof error, message: String(error) };
  }
}

/** Records every `storeerror` of `cb` as text into `into` (a new list by default). */
export function storeErrorsOf(cb: CbFetch, into: string[] = []): string[] {
  cb.addEventListener("storeerror", (event) => {
    const error = "error" in event ? event.error : undefined;
    into.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  });
  return into;
}
