import type { Entry } from "../keys/registry.js";
import { type FetchInput, urlOf } from "../request.js";
import type { Core } from "./core.js";
import { Detour } from "./detour.js";
import { send } from "./send.js";

/**
 * One call through an instance, in the order of its steps: its key, the breaker's decision,
 * fetch ({@link send}), and the outcome ({@link answered}, {@link rejected}), which the breaker
 * counts (and tells the shared state about). The healthy path, a known key in the closed state,
 * runs through these plain functions and allocates nothing of its own; every other path (a
 * key's first call, the bulkhead, a probe, a refusal) goes through a {@link Detour}, which keeps
 * what its steps need. Not async: a closed-state call makes one promise.
 */
export function call(
  core: Core,
  input: FetchInput,
  init: RequestInit | undefined,
): Promise<Response> {
  let url: string;
  let entry: Entry | undefined;
  const keyOf = core.config.keyOf;
  if (typeof input === "string" && keyOf === undefined) {
    entry = core.registry.forUrl((url = input)); // never throws
  } else {
    try {
      url = urlOf(input);
      const keyed = core.parts.keyOf;
      entry =
        keyOf && keyed
          ? keyed.keyedEntry(keyOf, core.registry, url, input, init)
          : core.registry.forUrl(url);
    } catch (error) {
      return Promise.reject(error); // the caller's: an invalid URL, a throwing keyOf
    }
  }
  if (entry === undefined) return passThrough(core, input, init);
  if (!entry.loaded || entry.bulkhead !== undefined) {
    return new Detour(core, input, init, url).run(entry);
  }
  const { breaker } = entry;
  const permit = breaker.allow();
  if (permit === undefined)
    return new Detour(core, input, init, url).refuse(entry, breaker.openError());
  if (permit.probe) return new Detour(core, input, init, url).decided(entry, permit);
  return send(core, breaker, permit, url, input, init);
}

/** A request cbfetch does not guard (not http(s)), as fetch makes it, but always as a promise. */
function passThrough(core: Core, input: FetchInput, init: RequestInit | undefined) {
  try {
    return core.fetch()(input, init);
  } catch (error) {
    return Promise.reject(error);
  }
}
