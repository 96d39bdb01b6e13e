import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
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
