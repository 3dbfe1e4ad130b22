import { z } from 'zod';

/** C0 and C1 control characters and DEL: never part of a name, an identifier or a URI. */
const CONTROL = '\\x00-\\x1F\\x7F-\\x9F';
const NO_CONTROL = new RegExp(`^[^${CONTROL}]*$`);
const ANY_CONTROL = new RegExp(`[${CONTROL}]`, 'g');

/** `text` with each control character written as a \uXXXX escape: kept readable, and storable anywhere (PostgreSQL refuses U+0000). */
export function escapeControlCharacters(text: string): string {
  return text.replace(ANY_CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A UTF-16 surrogate without its pair: no character at all, and stored as U+FFFD by the drivers. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Text people or systems name things with. PostgreSQL cannot store U+0000 at all (SQLite can), so
 * without this check the same input was a 201 on one database and a 500 on the other. The control
 * characters are a regex, not a refinement, so the JSON Schema of the admin API carries it as a pattern.
 */
export function plainText(max: number) {
  return z
    .string()
    .min(1)
    .max(max)
    .regex(NO_CONTROL, 'must not contain control characters')
    .refine((value) => !LONE_SURROGATE.test(value), 'must be well-formed Unicode (no lone surrogates)');
}
