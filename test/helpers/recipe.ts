import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { expect } from "vitest";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root folder. */
export const root = fileURLToPath(new URL("../..", import.meta.url));

/**
 * The README's code blocks of one recipe, `{ file: contents }`: each block is marked
 * `<!-- recipe: <name> <file> -->` just before its fence.
 */
export function recipe(name: string): Record<string, string> {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const marked = new RegExp(
    `<!-- recipe: ${name} (\\S+) -->\\s*\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``,
    "g",
  );
  return Object.fromEntries([...readme.matchAll(marked)].map((m) => [m[1], m[2]]));
}

/**
 * Runs a command in `cwd` as a user would (none of this vitest's own variables), killed after
 * `timeout` ms: whether it succeeded, and what it printed.
 */
export function run(
  command: string,
  args: string[],
  timeout: number,
  cwd: string,
  env: Record<string, string> = {},
): { ok: boolean; output: string } {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("VITEST")),
  );
  const result = spawnSync(command, args, {
    cwd,
    encoding: "utf8",
    timeout,
    killSignal: "SIGKILL",
    env: { ...inherited, NO_COLOR: "1", ...env },
  });
  const output = `${result.stdout}${result.stderr}`;
  return { ok: result.status === 0, output: result.signal ? `timed out: ${output}` : output };
}

/**
 * In a project at `work` whose node_modules are in place: type-checks it with `tsconfig`, runs
 * its tests with vitest, and returns vitest's counts (both steps must succeed).
 */
export function typeCheckAndTest(
  work: string,
  tsconfig: string,
  env: Record<string, string> = {},
): { numTotalTests: number; numPassedTests: number } {
  const bin = (name: string) => join(work, "node_modules", ".bin", name);
  const types = run(bin("tsc"), ["-p", tsconfig], 60_000, work, env);
  expect(types.ok, types.output).toBe(true);
  const report = join(work, "report.json");
  const args = ["run", "--reporter=json", `--outputFile=${report}`];
  const tests = run(bin("vitest"), args, 90_000, work, env);
  expect(tests.ok, tests.output).toBe(true);
  const { numTotalTests, numPassedTests } = JSON.parse(readFileSync(report, "utf8"));
  return { numTotalTests, numPassedTests };
}
