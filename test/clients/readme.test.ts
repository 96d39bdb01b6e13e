import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { recipe, root } from "../helpers/recipe.js";

// The README's "With your HTTP client" recipes are the code the tests in this folder run: each
// block marked `<!-- recipe: clients <name> -->` has, line for line, the code between
// `// recipe: <name>` and `// end recipe` in its test file, and each name it imports is imported
// there from the same package (see SOURCES).
const TESTS: Record<string, string> = {
  axios: "axios",
  "axios-retry": "axios",
  ofetch: "ofetch",
  "openapi-fetch": "openapi-fetch",
  wretch: "wretch",
  "graphql-request": "graphql-request",
  "tanstack-query": "tanstack-query",
  "tanstack-query-retry": "tanstack-query",
  swr: "swr",
};

/**
 * Where the tests import what the README imports from: cbfetch from its sources, and TanStack
 * Query from its core, whose `QueryClient` @tanstack/react-query re-exports (no React there).
 */
const SOURCES: Record<string, string> = {
  cbfetch: "../../src/index.js",
  "@tanstack/react-query": "@tanstack/query-core",
};

const lines = (code: string) =>
  code
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");

/** `{ specifier: names }` of the import statements in `code`. */
function imports(code: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const [, clause, from] of code.matchAll(/^import\s+([\s\S]*?)\s+from\s+"([^"]+)";/gm)) {
    const names = clause!
      .replace(/[{}]/g, ",")
      .split(",")
      .map((name) => name.replace(/^type\s+/, "").trim())
      .filter(Boolean);
    found.set(from!, [...(found.get(from!) ?? []), ...names]);
  }
  return found;
}

const blocks = recipe("clients");

it("the README has a recipe for each client, and no other", () => {
  expect(Object.keys(blocks).sort()).toEqual(Object.keys(TESTS).sort());
});

it.each(Object.entries(TESTS))("the README's %s recipe is the code its test runs", (name, file) => {
  const test = readFileSync(join(root, "test/clients", `${file}.test.ts`), "utf8");
  const start = test.indexOf(`// recipe: ${name}\n`);
  expect(start, `test/clients/${file}.test.ts has no "// recipe: ${name}"`).toBeGreaterThan(-1);
  const end = test.indexOf("// end recipe", start);
  const ran = lines(test.slice(test.indexOf("\n", start) + 1, end));
  const readme = blocks[name]!;
  const code = readme.replace(/^import\s+[\s\S]*?;\n/gm, "");
  expect(lines(code)).toEqual(ran);

  const imported = imports(test);
  for (const [from, names] of imports(readme)) {
    const source = SOURCES[from] ?? from;
    expect(imported.get(source), `${name}: ${from}`).toEqual(expect.arrayContaining(names));
  }
});
