import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCRIPT } from "../src/redis/script.js";
import { type BreakerRecord, mergeRecords, RECORD_VERSION } from "../src/shared/record.js";
import { startRedis, type TestRedis } from "./helpers/redis.js";

// DESIGN §13: the §3 merge runs in Redis as Lua; it must give what the TypeScript merge gives.
// The script runs in a real redis-server on the same random record pairs as `mergeRecords`.

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis.stop());

const KEY = "https://api.example.com";
const keys = ["2", "p:{k}", "p:{k}:lease"];

/** Saves `record` with the script (clock 0 and a long idle time: nothing expires). */
async function save(record: BreakerRecord): Promise<BreakerRecord> {
  const args = [record.opened, record.retryAt, record.reopens, record.closed].map(String);
  const answer = (await redis.admin.sendCommand([
    "EVAL",
    SCRIPT,
    ...keys,
    "s",
    "0",
    "p:changes",
    KEY,
    ...args,
    "1e15",
    "",
  ])) as string[];
  const [opened, retryAt, reopens, closed] = answer.map(Number) as number[];
  return { v: RECORD_VERSION, key: KEY, opened, retryAt, reopens, closed } as BreakerRecord;
}

// Epoch ms with and without a fraction (the instance's clock has one), picked from a few values
// so that ties (the merge's tie-breaks) are frequent.
const time = fc.oneof(
  fc.constantFrom(0, 1, 1_733_400_000_000, 1_733_400_000_000.25, 1_733_400_030_000.123),
  fc.double({ min: 0, max: 2e12, noNaN: true, noDefaultInfinity: true }),
);
const record = fc
  .record({
    opened: time,
    retryAt: time,
    reopens: fc.oneof(fc.constantFrom(0, 1, 2), fc.integer({ min: 0, max: 1000 })),
    closed: time,
  })
  .map((r) => ({ v: RECORD_VERSION, key: KEY, ...r }) as BreakerRecord);

describe("the Lua merge (in redis-server) and mergeRecords", () => {
  it("give the same record for random pairs, in both orders, and keep it on a second save", async () => {
    await fc.assert(
      fc.asyncProperty(record, record, async (a, b) => {
        await redis.admin.del("p:{k}");
        expect(await save(a)).toEqual(a);
        expect(await save(b)).toEqual(mergeRecords(a, b));
        expect(await save(a)).toEqual(mergeRecords(mergeRecords(a, b), a));
        await redis.admin.del("p:{k}");
        await save(b);
        expect(await save(a)).toEqual(mergeRecords(b, a));
      }),
      { numRuns: 300 },
    );
  });

  it("keeps the exact numbers it was given (Lua's own formatting would round epoch ms)", async () => {
    await redis.admin.del("p:{k}");
    const r = {
      v: RECORD_VERSION,
      key: KEY,
      opened: 1_733_400_000_123 + 0.4567,
      retryAt: 1_733_400_030_123 + 0.4567,
      reopens: 3,
      closed: 0,
    } as BreakerRecord;
    expect(await save(r)).toEqual(r);
    expect(await redis.admin.hGet("p:{k}", "o")).toBe(String(r.opened));
  });

  it("replaces garbage it finds stored", async () => {
    await redis.admin.hSet("p:{k}", { o: "inf", t: "nan", n: "-1", c: "x" });
    const r = {
      v: RECORD_VERSION,
      key: KEY,
      opened: 5,
      retryAt: 10,
      reopens: 0,
      closed: 0,
    } as BreakerRecord;
    expect(await save(r)).toEqual(r);
  });
});
