import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { recipe, root, typeCheckAndTest } from "./helpers/recipe.js";

/** Wrangler offline, its config inside the temporary project. */
const wrangler = () => ({
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_HIDE_BANNER: "true",
  XDG_CONFIG_HOME: join(work, ".config"),
});

// The README's "Testing your worker with @cloudflare/vitest-pool-workers" recipe, run as
// written: its code blocks (marked `<!-- recipe: workers-test <file> -->`) are written into a
// temporary folder beside a copy of worker-example/, whose node_modules are this repository's
// (cbfetch itself is this repository's build: npm run build first), then type-checked with
// their tsconfig and run with vitest and the Workers pool inside workerd, offline.
const work = mkdtempSync(join(tmpdir(), "cbfetch-recipe-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

it("the README's vitest-pool-workers recipe type-checks and passes against worker-example", () => {
  const files = recipe("workers-test");
  expect(Object.keys(files)).toEqual(
    expect.arrayContaining(["vitest.config.ts", "test/worker.test.ts", "test/tsconfig.json"]),
  );
  expect(existsSync(join(root, "dist/cloudflare/index.js")), "npm run build first").toBe(true);

  for (const name of ["src", "wrangler.jsonc", "tsconfig.json", "package.json"]) {
    cpSync(join(root, "worker-example", name), join(work, name), { recursive: true });
  }
  for (const [file, contents] of Object.entries(files)) {
    mkdirSync(dirname(join(work, file)), { recursive: true });
    writeFileSync(join(work, file), contents);
  }
  // node_modules: the repository's packages, and cbfetch as the repository itself (its dist).
  const modules = join(work, "node_modules");
  mkdirSync(modules);
  for (const name of readdirSync(join(root, "node_modules"))) {
    symlinkSync(join(root, "node_modules", name), join(modules, name));
  }
  symlinkSync(root, join(modules, "cbfetch"));

  const { numTotalTests, numPassedTests } = typeCheckAndTest(
    work,
    "test/tsconfig.json",
    wrangler(),
  );
  const written = files["test/worker.test.ts"]?.match(/^it\(/gm)?.length;
  expect({ numTotalTests, numPassedTests }).toEqual({
    numTotalTests: written,
    numPassedTests: written,
  });
}, 180_000);
