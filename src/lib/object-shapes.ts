/**
 * An object that oidc-provider spreads into a literal with more fields after it (`{ ...extra, jti, sub }`
 * for a JWT's payload, `{ ...claims, sub }` for an ID token's claims), made cheap to spread there.
 *
 * On Node 20 (V8 11.3) such a literal gets a hidden class of its own on every evaluation when the
 * spread object is an ordinary one: each field after the spread is a runtime call that builds a new
 * map (about 1 µs each), and every later property access on the result misses V8's inline caches, in
 * oidc-provider's code and Tally's alike. A frozen object takes V8's ordinary path: that JWT payload
 * literal costs 0.1 µs instead of 7.5 µs (bench/ANALYSIS.md). Node 22's V8 has neither problem.
 * Tally's own code builds such objects by assignment or `Object.assign` instead.
 */
export function cheapToSpread<T extends object>(value: T): Readonly<T> {
  return Object.freeze(value);
}
