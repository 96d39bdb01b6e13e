/**
 * cbfetch/log: one structured line per circuit transition, from an instance's events.
 *
 * @packageDocumentation
 */
import type { CbFetch } from "../fetch/types.js";
import { type TransitionLine, watchTransitions } from "./transitions.js";

export type { TransitionLine, TransitionReason } from "./transitions.js";

/** Prints a line as one JSON line, which log pipelines (Workers Logs, `wrangler tail`) parse. */
export function jsonLine(line: TransitionLine): void {
  console.log(JSON.stringify(line));
}

/**
 * Logs every transition of `cb`'s circuits as one structured line
 * `{ key, from, to, reason, retryAt }` (see {@link TransitionReason} for what `reason` can
 * tell). Returns a function that stops logging.
 *
 * @param logger - receives each line.
 * @default logger {@link jsonLine}: `console.log(JSON.stringify(line))`
 */
export function logTransitions(
  cb: CbFetch,
  logger: (line: TransitionLine) => void = jsonLine,
): () => void {
  return watchTransitions(cb, logger);
}
