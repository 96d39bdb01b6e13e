/**
 * `cbfetch/cloudflare`: circuit breakers for Cloudflare Workers whose state lives in a Durable
 * Object, so an open circuit stays open across isolates and cold starts. The Durable Object
 * class is in `cbfetch/cloudflare/object` (it needs `cloudflare:workers`), the Hono middleware
 * in `cbfetch/hono`; everything here imports in plain Node too, for unit tests.
 *
 * @packageDocumentation
 */
export { optionsFromEnv } from "./env.js";
export { type BreakerHandler, openCircuitResponse, withCircuitBreaker } from "./middleware.js";
export { durableObjectStore, type ProbeLeasingStore } from "./store.js";
export type * from "./types.js";
