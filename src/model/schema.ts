/**
 * Glue between zod and our `Issue`: the per-parse error map that turns zod's generic messages into
 * ones that say what to do, the conversion of zod issues into `Issue`s at a store path, and small
 * schema builders used by every concept file (bounded integers, strict objects, custom failures).
 */
import { z } from 'zod';
import type { Issue } from './issue.ts';
import type { Result } from '../lib/result.ts';
import { ok, err } from '../lib/result.ts';
import { describe, didYouMean, show } from './text.ts';

/** Object path or field path segments, as in `Issue`. */
export type Segments = readonly (string | number)[];

/**
 * Adds a failure from inside a `.transform`/`.superRefine` with our own issue code (carried in
 * zod's `params` and restored by `toIssues`). `path` is relative to the value being checked.
 */
export function fail(ctx: z.RefinementCtx, code: string, message: string, path: (string | number)[] = []): void {
  ctx.addIssue({ code: 'custom', message, params: { code }, path });
}

/**
 * A whole number in [min, max] with one message for every way to miss it, e.g.
 * `must be an integer 576–9000 bytes; got 9001`. `hint` is appended in parentheses.
 */
export function intIn(min: number, max: number, unit = '', hint = ''): z.ZodNumber {
  const error = (iss: { input?: unknown }): string =>
    `must be an integer ${min}–${max}${unit ? ' ' + unit : ''}; got ${describeNumber(iss.input)}${hint ? ` (${hint})` : ''}`;
  return z.number({ error: (iss) => (iss.input === undefined ? undefined : error(iss)) }).int({ error }).min(min, { error }).max(max, { error });
}

function describeNumber(v: unknown): string {
  return typeof v === 'number' ? String(v) : describe(v);
}

/** Marker the error map puts in front of the known field list of an `unrecognized_keys` issue. */
const KNOWN = '\u0000known:';

/**
 * Fallback messages for issues whose schema gave none. Runs once per issue with the schema
 * instance at hand, which is the only place zod tells us the known fields of a strict object.
 */
const errorMap: z.core.$ZodErrorMap = (iss) => {
  const input = iss.input;
  switch (iss.code) {
    case 'invalid_type': {
      if (input === undefined) return 'required field is missing; add it';
      const expected = iss.expected as string;
      const want: Record<string, string> = {
        string: 'text',
        number: 'a number',
        int: 'a whole number',
        object: 'a map of fields',
        record: 'a map',
        array: 'a list',
        boolean: 'true or false',
      };
      return `expected ${want[expected] ?? expected}, got ${describe(input)}`;
    }
    case 'invalid_value': {
      const values = iss.values.map(String);
      return `${show(input)} is not allowed; use one of ${values.join(', ')}${typeof input === 'string' ? didYouMean(input, values) : ''}`;
    }
    case 'too_small':
      if (iss.origin === 'array' || iss.origin === 'set') return `needs at least ${String(iss.minimum)} item${iss.minimum === 1 ? '' : 's'}`;
      if (iss.origin === 'string') return iss.minimum === 1 ? 'must not be empty' : `must be at least ${String(iss.minimum)} characters`;
      return `must be at least ${String(iss.minimum)}; got ${show(input)}`;
    case 'too_big':
      if (iss.origin === 'array' || iss.origin === 'set') return `has more than ${String(iss.maximum)} items; remove some`;
      if (iss.origin === 'string') return `must be at most ${String(iss.maximum)} characters`;
      return `must be at most ${String(iss.maximum)}; got ${show(input)}`;
    case 'unrecognized_keys': {
      const shape = (iss.inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def?.shape ?? {};
      return KNOWN + Object.keys(shape).join(',');
    }
    default:
      return undefined;
  }
};

/** Converts zod issues of one object into `Issue`s at `path`; zod's path becomes the field. */
export function toIssues(issues: readonly z.core.$ZodIssue[], path: Segments): Issue[] {
  const out: Issue[] = [];
  for (const zi of issues) {
    const field = zi.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    if (zi.code === 'unrecognized_keys') {
      const known = zi.message.startsWith(KNOWN) ? zi.message.slice(KNOWN.length).split(',').filter(Boolean) : [];
      for (const key of zi.keys) {
        out.push({
          code: 'unknown_field',
          path,
          field: [...field, key],
          message: `unknown field ${show(key)}${didYouMean(key, known)}${known.length ? `; known fields: ${known.join(', ')}` : ''}`,
        });
      }
      continue;
    }
    let code: string = zi.code;
    if (zi.code === 'custom') code = (zi.params as { code?: string } | undefined)?.code ?? 'invalid';
    else if (zi.code === 'invalid_type' && zi.message === 'required field is missing; add it') code = 'missing';
    out.push({ code, path, field, message: zi.message });
  }
  return out;
}

/** Parses `value` with `schema`; failures come back as `Issue`s located at `path`. */
export function parseAt<S extends z.ZodType>(schema: S, value: unknown, path: Segments): Result<z.output<S>, Issue[]> {
  const res = schema.safeParse(value, { error: errorMap });
  if (res.success) return ok(res.data);
  return err(toIssues(res.error.issues, path));
}
