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

function runScript(body: string, nodeArgs: string[] = []) {
  const file = join(dir, `script-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, `import { createCbFetch, memoryStore } from "./cbfetch.mjs";\n${body}`);
  const started = Date.now();
  const result = spawnSync(process.execPath, [...nodeArgs, file], {
    encoding: "utf8",
    timeout: 10_000,
  });
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

describe("the caller's code cannot take the process down or grow it (issue 13)", () => {
  it("a throwing statechange listener does not kill the process", () => {
    const result = runScript(`
const cb = createCbFetch({ failureThreshold: 1, fetch: async () => new Response(null, { status: 503 }) });
cb.addEventListener("statechange", () => { throw new Error("listener"); });
console.error = () => {}; // where a browser would report it
await cb("https://api.example.com/");
await new Promise((resolve) => setTimeout(resolve, 50));
console.log("alive", cb.state("https://api.example.com"));
`);
    expect(result.stdout).toContain("alive open");
    expect(result.status).toBe(0);
  });

  it("timeoutMs with one long-lived caller signal keeps the heap flat", () => {
    // 20 000 calls through one AbortSignal: Node's AbortSignal.any kept ~54 B per call forever.
    const result = runScript(
      `
const cb = createCbFetch({ timeoutMs: 60_000, fetch: async () => new Response(null) });
const { signal } = new AbortController();
const run = async (n) => { for (let i = 0; i < n; i++) await cb("https://api.example.com/", { signal }); };
const heap = async () => { for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setTimeout(r, 10)); } return process.memoryUsage().heapUsed; };
await run(2_000);
const before = await heap();
await run(20_000);
console.log("grew", (await heap()) - before);
`,
      ["--expose-gc"],
    );
    expect(result.stderr).toBe("");
    const grew = Number(/grew (-?\d+)/.exec(result.stdout)?.[1]);
    expect(grew).toBeLessThan(300_000); // 20 000 × 54 B would be over 1 MB
  });
});
