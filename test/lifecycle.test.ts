import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// A real Node process: after close() (and even without it), nothing cbfetch made keeps it
// alive: no timer, channel, lock or pending write.
const dir = mkdtempSync(join(tmpdir(), "cbfetch-lifecycle-"));
const bundle = join(dir, "cbfetch.mjs");
beforeAll(async () => {
  await build({
    entryPoints: [fileURLToPath(new URL("../src/index.ts", import.meta.url))],
    bundle: true,
    format: "esm",
    platform: "node",
    outfile: bundle,
    logLevel: "silent",
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runScript(body: string) {
  const file = join(dir, `script-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, `import { createCbFetch, memoryStore } from "./cbfetch.mjs";\n${body}`);
  const started = Date.now();
  const result = spawnSync(process.execPath, [file], { encoding: "utf8", timeout: 10_000 });
  return { ...result, ms: Date.now() - started };
}

const exercise = `
let n = 0;
const cb = createCbFetch({
  store: memoryStore(),
  sync: "lifecycle",
  timeoutMs: 60_000,
  failureThreshold: 3,
  fetch: async () => new Response(null, { status: n++ < 2 ? 503 : 200 }),
});
await cb.ready;
for (let i = 0; i < 5; i++) await cb("https://api.example.com/x");
console.log("state", cb.state("https://api.example.com"));
`;

describe("process lifetime", () => {
  it("exits promptly after close()", () => {
    const result = runScript(`${exercise}\nawait cb.close();\nconsole.log("closed");`);
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain("closed");
    expect(result.status).toBe(0);
    expect(result.ms).toBeLessThan(5_000);
  });

  it("exits by itself even without close(), a pending failure-count write included", () => {
    const result = runScript(exercise);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("state closed");
    expect(result.ms).toBeLessThan(5_000);
  });
});
