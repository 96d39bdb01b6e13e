import { describe, expect, it } from "vitest";
import { BREAKER_NUMBERS, readGroup, resolveBreakerOptions } from "../src/breaker/options.js";
import { originOf } from "../src/keys/key.js";
import { Registry } from "../src/keys/registry.js";

const urls = [
  "https://api.example.com/items?id=1",
  "https://api.example.com",
  "http://localhost:8080/x",
  "http://127.0.0.1:3000/a#b",
  "https://a-b.c-d.example/?q",
  "https://API.example.com/",
  "https://api.example.com:443/",
  "http://api.example.com:80/",
  "http://api.example.com:080/",
  "http://api.example.com:/",
  "http://api.example.com:65536/",
  "http://0x7f.1/",
  "http://1.2.3/",
  "http://127.000.0.1/",
  "http://256.0.0.1/",
  "http://[::1]:8080/",
  "http://user:pass@example.com/",
  "http://example.com./",
  "http://xn--nxasmq6b.com/",
  "http://exa%41mple.com/",
  "http://ex\tample.com/",
  "  https://example.com/",
  "https://éxample.com/",
  "https://example.com\\path",
  "http://a_b.example.com/",
  "https://12345/",
  "https://example.123/",
];

/** A registry of default breakers; `known`: origins it holds already. */
function registry(known: Iterable<string> = []) {
  const breaker = resolveBreakerOptions(readGroup("test", {}, BREAKER_NUMBERS));
  const made = new Registry({ breaker, maxBreakers: 100_000, preload: false }, () => {});
  for (const key of known) made.get(key);
  return made;
}

/** The origins of `list` that cbfetch guards. */
const originsOf = (list: string[]) =>
  list.map((url) => originOf(url)).filter((key): key is string => key !== undefined);

describe("origin keys", () => {
  it.each(urls)("the registry keys %j as new URL().origin, parsed or looked up", (url) => {
    const expected = originOf(url);
    const fresh = registry();
    expect(fresh.forUrl(url)?.breaker.key).toBe(expected); // the parser
    expect(fresh.forUrl(url)?.breaker.key).toBe(expected); // the last origin, again
    // A registry that knows every origin of the list: a lookup by the URL's text.
    expect(registry(originsOf(urls)).forUrl(url)?.breaker.key).toBe(expected);
  });

  it("looks a known origin up without parsing, whatever the path, query or fragment", () => {
    const known = registry(["https://api.example.com", "http://127.0.0.1:3000"]);
    for (const url of [
      "https://api.example.com/items?id=1",
      "https://api.example.com",
      "https://api.example.com?x#y",
      "http://127.0.0.1:3000#a",
    ]) {
      expect(known.forUrl(url)?.breaker.key).toBe(originOf(url));
    }
    expect(known.size).toBe(2);
  });

  it("agrees with new URL on random URL-ish strings, with their origins known", () => {
    const alphabet = "abcxz09.-:/?#@[]%_AB\\ \t1";
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const list: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      let tail = "";
      const len = 1 + rand(20);
      for (let j = 0; j < len; j++) tail += alphabet[rand(alphabet.length)];
      list.push((rand(2) ? "https://" : "http://") + tail);
    }
    const known = registry(originsOf(list));
    for (const url of list) expect(known.forUrl(url)?.breaker.key, url).toBe(originOf(url));
  });

  it("never keys on path, query or credentials, and skips what fetch would reject", () => {
    expect(originOf("https://api.example.com/users/42?token=secret")).toBe(
      "https://api.example.com",
    );
    expect(originOf("https://API.Example.com:443/x")).toBe("https://api.example.com");
    expect(originOf("http://[::1]:8080/x")).toBe("http://[::1]:8080");
    expect(originOf("http://user:pass@example.com/")).toBeUndefined();
    expect(originOf("data:text/plain,hi")).toBeUndefined();
    expect(originOf("blob:https://example.com/1234")).toBeUndefined();
    expect(originOf("about:blank")).toBeUndefined();
    expect(originOf("not a url")).toBeUndefined();
  });
});
