import { circuitBreaker, handleAll, SamplingBreaker } from "cockatiel";
import { createCbFetch } from "./dist/index.js";
const response = new Response(null, { status: 200 });
const stub = async () => response;
const URL_STRING = "https://api.example.com/items?id=1";
const cbRate = createCbFetch({ fetch: stub, failureRate: { threshold: 0.5, windowMs: 10_000, minimumCalls: 20 } });
const sampling = circuitBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000, minimumRps: 5 }) });
const raw = async (n) => { for (let i = 0; i < n; i++) await stub(URL_STRING); };
const a = async (n) => { for (let i = 0; i < n; i++) await cbRate(URL_STRING); };
const b = async (n) => { for (let i = 0; i < n; i++) await sampling.execute(() => stub(URL_STRING)); };
const which = process.argv[2];
for (const f of [raw, a, b]) await f(200000);
const res = { raw: [], cb: [], ck: [] };
for (let r = 0; r < 11; r++) {
  for (const [k, f] of [["raw", raw], ["cb", a], ["ck", b]]) {
    if (which && k !== which && k !== "raw") continue;
    const t = process.hrtime.bigint(); await f(100000); res[k].push(Number(process.hrtime.bigint() - t) / 100000);
  }
}
const med = (x) => x.sort((p, q) => p - q)[x.length >> 1];
console.log("raw", med(res.raw)?.toFixed(0), "cb", med(res.cb)?.toFixed(0), "cockatiel", med(res.ck)?.toFixed(0));
