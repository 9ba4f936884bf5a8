/**
 * A small JSON Schema (2020-12) checker for the subset `z.toJSONSchema` emits, so tests can hold
 * the OpenAPI document to real objects without a validator dependency. It refuses keywords it does
 * not know instead of ignoring them: a constraint it skipped would make a test pass for nothing.
 */

type Schema = boolean | Record<string, unknown>;

/** Keywords that describe and never constrain. */
const ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description', 'default', 'examples', 'deprecated', 'readOnly', 'writeOnly', 'format', 'contentEncoding', 'contentMediaType']);

/** Keywords this checker implements. */
const KEYWORDS = new Set([
  '$ref', 'type', 'enum', 'const', 'properties', 'required', 'additionalProperties', 'propertyNames', 'items', 'prefixItems',
  'minItems', 'maxItems', 'minLength', 'maxLength', 'pattern', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
  'multipleOf', 'anyOf', 'oneOf', 'allOf', 'not', 'minProperties', 'maxProperties',
]);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function hasType(v: unknown, t: string): boolean {
  switch (t) {
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    default:
      return typeOf(v) === t;
  }
}

function equal(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Every way `value` fails `schema`, as `pointer: reason` strings; empty when it conforms. `root`
 * is the document `#/…` references are resolved in (the OpenAPI document).
 */
export function checkSchema(schema: Schema, value: unknown, root: unknown, at = ''): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${at || '/'}: no value is allowed here`];
  const out: string[] = [];
  const fail = (why: string): void => void out.push(`${at || '/'}: ${why}`);
  for (const k of Object.keys(schema)) if (!KEYWORDS.has(k) && !ANNOTATIONS.has(k)) throw new Error(`jsonschema: keyword ${k} at ${at || '/'} is not implemented`);

  if (typeof schema.$ref === 'string') {
    const ref = schema.$ref;
    if (!ref.startsWith('#/')) throw new Error(`jsonschema: only local references are implemented, got ${ref}`);
    let target: unknown = root;
    for (const part of ref.slice(2).split('/')) target = (target as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    if (target === undefined) throw new Error(`jsonschema: ${ref} does not resolve`);
    out.push(...checkSchema(target as Schema, value, root, at));
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((t) => hasType(value, t))) {
      fail(`expected ${types.join(' or ')}, got ${typeOf(value)}`);
      return out;
    }
  }
  if (schema.enum !== undefined && !(schema.enum as unknown[]).some((e) => equal(e, value))) fail(`not one of ${JSON.stringify(schema.enum)}`);
  if ('const' in schema && !equal(schema.const, value)) fail(`not ${JSON.stringify(schema.const)}`);

  if (typeof value === 'string') {
    const len = [...value].length;
    if (typeof schema.minLength === 'number' && len < schema.minLength) fail(`shorter than ${schema.minLength}`);
    if (typeof schema.maxLength === 'number' && len > schema.maxLength) fail(`longer than ${schema.maxLength}`);
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) fail(`does not match ${schema.pattern}`);
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) fail(`below ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) fail(`above ${schema.maximum}`);
    if (typeof schema.exclusiveMinimum === 'number' && value <= schema.exclusiveMinimum) fail(`not above ${schema.exclusiveMinimum}`);
    if (typeof schema.exclusiveMaximum === 'number' && value >= schema.exclusiveMaximum) fail(`not below ${schema.exclusiveMaximum}`);
    if (typeof schema.multipleOf === 'number' && !Number.isInteger(value / schema.multipleOf)) fail(`not a multiple of ${schema.multipleOf}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) fail(`fewer than ${schema.minItems} items`);
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) fail(`more than ${schema.maxItems} items`);
    const prefix = (schema.prefixItems as Schema[] | undefined) ?? [];
    for (const [i, item] of value.entries()) {
      const s = i < prefix.length ? prefix[i] : (schema.items as Schema | undefined);
      if (s !== undefined) out.push(...checkSchema(s, item, root, `${at}/${i}`));
    }
  }
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties as Record<string, Schema> | undefined) ?? {};
    for (const r of (schema.required as string[] | undefined) ?? []) if (!Object.hasOwn(obj, r)) fail(`missing required ${r}`);
    const n = Object.keys(obj).length;
    if (typeof schema.minProperties === 'number' && n < schema.minProperties) fail(`fewer than ${schema.minProperties} properties`);
    if (typeof schema.maxProperties === 'number' && n > schema.maxProperties) fail(`more than ${schema.maxProperties} properties`);
    for (const [k, v] of Object.entries(obj)) {
      if (schema.propertyNames !== undefined) out.push(...checkSchema(schema.propertyNames as Schema, k, root, `${at}/${k}(name)`));
      if (Object.hasOwn(props, k)) out.push(...checkSchema(props[k]!, v, root, `${at}/${k}`));
      else if (schema.additionalProperties !== undefined) {
        if (schema.additionalProperties === false) fail(`unknown property ${k}`);
        else out.push(...checkSchema(schema.additionalProperties as Schema, v, root, `${at}/${k}`));
      }
    }
  }
  if (Array.isArray(schema.allOf)) for (const s of schema.allOf as Schema[]) out.push(...checkSchema(s, value, root, at));
  if (Array.isArray(schema.anyOf) && !(schema.anyOf as Schema[]).some((s) => checkSchema(s, value, root, at).length === 0)) fail('matches none of anyOf');
  if (Array.isArray(schema.oneOf) && (schema.oneOf as Schema[]).filter((s) => checkSchema(s, value, root, at).length === 0).length !== 1) fail('does not match exactly one of oneOf');
  if (schema.not !== undefined && checkSchema(schema.not as Schema, value, root, at).length === 0) fail('matches a schema it must not');
  return out;
}
