import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { recipe, root, run, typeCheckAndTest } from "./helpers/recipe.js";

// Issue 17: the README's "Testing your app" recipe, run as written, in a user-style project
// built from the packed package. Its code blocks (marked `<!-- recipe: testing <file> -->`)
// are written into a temporary folder, with DESIGN §10's rules (below: fake timers, isolation)
// as one more test file of that project. Its node_modules are this repository's, except
// cbfetch: the tarball `npm pack` makes (run `npm run build` first), unpacked in its place.
// Then the project is type-checked and its tests run with vitest under happy-dom.
const work = mkdtempSync(join(tmpdir(), "cbfetch-testing-recipe-"));
afterAll(() => {
  if (!process.env.KEEP_RECIPE) rmSync(work, { recursive: true, force: true });
});

/** DESIGN §10, checked in the user's project against the packed package. */
const RULES = `import { CircuitOpenError, createCbFetch } from "cbfetch";
import { afterEach, describe, expect, it, vi } from "vitest";

const URL = "https://api.example.com/items";
const fetch = vi.fn(async () => new Response("down", { status: 503 }));
// Created when the module loads, before any test installs fake timers.
const app = createCbFetch({ fetch, failureThreshold: 1, openMs: 1000, jitter: 0 });
afterEach(() => {
  vi.useRealTimers();
  app.breaker(URL).reset();
});

/** Trips the module's instance: open for exactly 1000 ms of fake time. */
async function opensForExactly1000ms() {
  await app(URL);
  vi.advanceTimersByTime(999);
  const refused = await app(URL).catch((error) => error);
  expect(refused).toBeInstanceOf(CircuitOpenError);
  expect(refused.retryAfterMs).toBe(1);
  vi.advanceTimersByTime(1);
  expect(app.state(URL)).toBe("half-open");
}

describe("fake timers", () => {
  it("move an instance created at module load exactly", async () => {
    vi.useFakeTimers();
    await opensForExactly1000ms();
  });

  it("leak no time: this test advances a day…", async () => {
    vi.useFakeTimers();
    vi.advanceTimersByTime(86_400_000);
    await opensForExactly1000ms();
  });

  it("…the next one starts from the present, in real time and under new fakes", async () => {
    const before = Date.now();
    await app(URL);
    expect(app.breaker(URL).retryAt - before).toBeLessThan(1000 + 200);
    app.breaker(URL).reset();
    vi.useFakeTimers();
    await opensForExactly1000ms();
  });

  it("vi.setSystemTime() forward moves the circuit at once", async () => {
    vi.useFakeTimers();
    await app(URL);
    vi.setSystemTime(Date.now() + 1000);
    expect(app.state(URL)).toBe("half-open");
  });
});

describe("isolation", () => {
  const settle = () => new Promise((resolve) => setTimeout(resolve, 30));
  const options = { fetch, failureThreshold: 1, syncWaitMs: 0 };

  it("sync names isolate instances; a closed instance neither sends nor hears", async () => {
    const a = createCbFetch({ ...options, sync: "rules" });
    const b = createCbFetch({ ...options, sync: "rules" });
    const other = createCbFetch({ ...options, sync: "rules-other" });
    await a(URL);
    await settle();
    expect(b.state(URL)).toBe("open"); // same name: shared
    expect(other.state(URL)).toBe("closed"); // another name: nothing heard
    await b.close();
    a.breaker(URL).reset();
    await other(URL);
    await settle();
    expect(b.state(URL)).toBe("open"); // closed: heard neither the reset nor anything else
    await Promise.all([a.close(), other.close()]);
    const next = createCbFetch({ ...options, sync: "rules" }); // the next test's instance
    await settle();
    expect(next.state(URL)).toBe("closed");
    await next.close();
  });
});
`;

it("the README's testing recipe and DESIGN §10's rules pass in a project built from the packed package", () => {
  const files = recipe("testing");
  expect(Object.keys(files)).toEqual(["vitest.config.ts", "src/api.ts", "test/api.test.ts"]);
  expect(existsSync(join(root, "dist/index.js")), "npm run build first").toBe(true);

  for (const [file, contents] of Object.entries({ ...files, "test/rules.test.ts": RULES })) {
    mkdirSync(dirname(join(work, file)), { recursive: true });
    writeFileSync(join(work, file), contents);
  }
  writeFileSync(
    join(work, "package.json"),
    JSON.stringify({ name: "app", private: true, type: "module" }),
  );
  writeFileSync(
    join(work, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: "ES2022",
        module: "ESNext",
        moduleResolution: "Bundler",
        lib: ["ES2022", "DOM"],
        types: [],
        skipLibCheck: false,
        noEmit: true,
      },
      include: ["src", "test/api.test.ts"],
    }),
  );

  // node_modules: the repository's packages, and cbfetch as npm would install its tarball.
  const pack = run("npm", ["pack", "--silent", "--pack-destination", work], 60_000, root);
  expect(pack.ok, pack.output).toBe(true);
  const tarball = join(work, pack.output.trim().split("\n").at(-1) ?? "");
  const modules = join(work, "node_modules");
  mkdirSync(modules);
  // Packages the tests' own code imports go through vite, which serves nothing outside the
  // project's folder: those are copied, the rest (vitest, happy-dom, typescript …) linked.
  const copied = ["fake-indexeddb", "idb-keyval"];
  for (const name of readdirSync(join(root, "node_modules"))) {
    const from = join(root, "node_modules", name);
    if (copied.includes(name)) cpSync(from, join(modules, name), { recursive: true });
    else if (name !== "cbfetch") symlinkSync(from, join(modules, name));
  }
  const unpack = run("tar", ["-xzf", tarball, "-C", work], 30_000, work);
  expect(unpack.ok, unpack.output).toBe(true);
  renameSync(join(work, "package"), join(modules, "cbfetch"));

  const { numTotalTests, numPassedTests } = typeCheckAndTest(work, "tsconfig.json");
  const written = [files["test/api.test.ts"], RULES]
    .map((text) => text?.match(/^\s*it\(/gm)?.length ?? 0)
    .reduce((a, b) => a + b);
  expect({ numTotalTests, numPassedTests }).toEqual({
    numTotalTests: written,
    numPassedTests: written,
  });
  // The tests ran against the tarball's cbfetch, not the repository's sources.
  expect(readdirSync(join(modules, "cbfetch"))).not.toContain("src");
}, 180_000);
