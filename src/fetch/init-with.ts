/**
 * `init` with some fields replaced, as fetch will read it: every field `init` has, own or
 * inherited (`Object.create(defaults)`), and the getters of a `Request` used as init, which
 * run on the Request itself (a copy of own fields would lose them). A body is passed on, never
 * read. The proxy's target is a fresh object: proxy invariants then never bind, even for a
 * frozen `init`. fetch reads its init field by field, which is all the proxy answers.
 */
export function initWith(init: RequestInit | null | undefined, fields: RequestInit): RequestInit {
  if (init == null || typeof init !== "object") return init ?? fields; // fetch rejects a non-object
  return new Proxy(fields, {
    get: (own, name) => (Object.hasOwn(own, name) ? own : init)[name as keyof RequestInit],
  });
}
