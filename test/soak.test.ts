import { describe, expect, it } from "vitest";
import { BulkheadFullError, CircuitOpenError, createCbFetch, memoryStore } from "../src/index.js";
import { hang, hangUp, respond, useServer } from "./helpers/server.js";

// A bounded soak: mixed traffic for SOAK_MS against a real local server with random failure
// bursts, caller aborts, timeouts and a bulkhead. Afterwards the counters add up, nothing is
// left in flight or scheduled, and no rejection went unhandled (vitest fails on those).
const SOAK_MS = Number(process.env.CBFETCH_SOAK_MS ?? 8_000);
const server = useServer();

/** A deterministic PRNG, so a failing soak can be replayed. */
function prng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
}

describe("soak", () => {
  it(
    `mixed traffic for ${SOAK_MS} ms: the counters add up, nothing leaks`,
    async () => {
      const random = prng(2026);
      const modes = [respond(200), respond(200), respond(503), respond(404), hangUp, hang];
      const switcher = setInterval(() => {
        server.handle(modes[Math.floor(random() * modes.length)] ?? respond(200));
      }, 150);
      const timersBefore = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
      const cb = createCbFetch({
        failureThreshold: 3,
        openMs: 100,
        maxOpenMs: 400,
        probeTimeoutMs: 300,
        timeoutMs: 250,
        maxConcurrent: 8,
        maxQueue: 0, // a call aborted while queued never reaches the breaker: keep the sums exact
        store: memoryStore(),
        sync: "soak",
      });
      const tally = { calls: 0, responses: 0, refused: 0, full: 0, aborted: 0, errors: 0 };
      const deadline = Date.now() + SOAK_MS;
      const worker = async () => {
        while (Date.now() < deadline) {
          tally.calls++;
          const controller = new AbortController();
          const abortSoon = random() < 0.1;
          const abort = abortSoon ? setTimeout(() => controller.abort(), random() * 50) : undefined;
          try {
            const response = await cb(`${server.origin}/soak?${tally.calls}`, {
              signal: controller.signal,
            });
            await response.arrayBuffer();
            tally.responses++;
          } catch (error) {
            if (error instanceof CircuitOpenError) tally.refused++;
            else if (error instanceof BulkheadFullError) tally.full++;
            else if (controller.signal.aborted) tally.aborted++;
            else tally.errors++;
          } finally {
            clearTimeout(abort);
          }
          if (random() < 0.3) await new Promise((r) => setTimeout(r, random() * 5));
        }
      };
      await Promise.all(Array.from({ length: 24 }, worker));
      clearInterval(switcher);
      server.dropConnections();

      const [stats] = cb.snapshot();
      if (stats === undefined) throw new Error("no breaker");
      expect(tally.calls).toBe(
        tally.responses + tally.refused + tally.full + tally.aborted + tally.errors,
      );
      expect(stats.rejections).toBe(tally.refused);
      expect(stats.probesInFlight).toBe(0);
      // Every admitted call ended as exactly one of success, failure or ignored.
      expect(stats.successes + stats.failures + stats.ignored).toBe(
        tally.responses + tally.aborted + tally.errors,
      );
      expect(tally.refused).toBeGreaterThan(0); // the bursts did open the circuit
      expect(tally.responses).toBeGreaterThan(0); // and it closed again
      await cb.close();
      const timersAfter = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
      expect(timersAfter).toBeLessThanOrEqual(timersBefore);
    },
    SOAK_MS + 30_000,
  );
});
