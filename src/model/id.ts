/**
 * Object ids and display names. Ids (`acme`, `ams`, `gre1`) become network namespace names,
 * nftables table/set names and store key segments, so they are held to a small alphabet that is
 * safe in all three and can never be read as an option or a command; display names are free text
 * for people and never reach the kernel.
 */
import { z } from 'zod';
import { show } from './text.ts';

/**
 * 1–32 of a–z, 0–9 and '-', not starting with '-'. The first character rule keeps an id from being
 * parsed as an option by `ip netns …`, even though we pass argv arrays and never a shell string.
 */
const ID_RE = /^[a-z0-9][a-z0-9-]{0,31}$/;

/** The reason `value` is not a valid id, or undefined when it is one. `what` names the id's role. */
export function idProblem(value: unknown, what = 'id'): string | undefined {
  if (typeof value === 'string' && ID_RE.test(value)) return undefined;
  const why =
    typeof value !== 'string' ? '' : value.length > 32 ? ' (too long)' : value.startsWith('-') ? ' (starts with "-")' : '';
  return (
    `${show(value)} is not a valid ${what}${why}: use 1–32 characters from a–z, 0–9 and "-", ` +
    `starting with a letter or digit (ids become network namespace and nftables names)`
  );
}

/** True when `value` is a valid id. */
export function isId(value: unknown): value is string {
  return typeof value === 'string' && ID_RE.test(value);
}

/** Schema of an id field (e.g. a route's `tunnel`), with `what` naming it in messages. */
export function idSchema(what = 'id'): z.ZodType<string> {
  return z.string().refine(isId, { error: (iss) => idProblem(iss.input, what), params: { code: 'invalid_id' } });
}

/** Display names: 1–128 characters, no control characters (they are shown in tables and logs). */
export const displayNameSchema = z
  .string()
  .min(1, { error: 'must not be empty' })
  .max(128, { error: 'must be at most 128 characters' })
  // eslint-disable-next-line no-control-regex
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), {
    error: 'must not contain control characters (newlines, tabs, escapes); write it on one line',
    params: { code: 'invalid_name' },
  });

/** Free-text descriptions on rules and prefixes: like display names, up to 256 characters. */
export const descriptionSchema = z
  .string()
  .max(256, { error: 'must be at most 256 characters' })
  // eslint-disable-next-line no-control-regex
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), {
    error: 'must not contain control characters (newlines, tabs, escapes); write it on one line',
    params: { code: 'invalid_text' },
  });
