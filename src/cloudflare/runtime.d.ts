// The parts of the Workers runtime that cbfetch/cloudflare uses, declared here so the package
// builds without @cloudflare/workers-types (whose globals clash with the DOM's). Users' own
// workers-types provide the real declarations of "cloudflare:workers".
declare module "cloudflare:workers" {
  export abstract class DurableObject<Env = unknown> {
    protected ctx: import("./types.js").DurableObjectStateLike;
    protected env: Env;
    constructor(ctx: import("./types.js").DurableObjectStateLike, env: Env);
  }
  export function waitUntil(promise: Promise<unknown>): void;
}
