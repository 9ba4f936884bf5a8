import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkSchema } from './jsonschema.ts';

const root = {
  components: {
    schemas: {
      Id: { type: 'string', pattern: '^[a-z]+$', maxLength: 3 },
      Thing: {
        type: 'object',
        properties: { id: { $ref: '#/components/schemas/Id' }, n: { type: 'integer', minimum: 1, maximum: 9 }, tags: { type: 'array', items: { type: 'string' }, minItems: 1 } },
        required: ['id'],
        additionalProperties: false,
      },
    },
  },
};
const thing = { $ref: '#/components/schemas/Thing' };

test('accepts a conforming value', () => {
  assert.deepEqual(checkSchema(thing, { id: 'abc', n: 3, tags: ['x'] }, root), []);
});

test('reports every violation with its place', () => {
  const errors = checkSchema(thing, { id: 'ABCD', n: 2.5, tags: [], extra: 1 }, root);
  assert.ok(errors.some((e) => e.startsWith('/id: does not match')), errors.join('\n'));
  assert.ok(errors.some((e) => e.startsWith('/id: longer than 3')), errors.join('\n'));
  assert.ok(errors.some((e) => e.startsWith('/n: expected integer')), errors.join('\n'));
  assert.ok(errors.some((e) => e.startsWith('/tags: fewer than 1')), errors.join('\n'));
  assert.ok(errors.some((e) => e === '/: unknown property extra'), errors.join('\n'));
  assert.deepEqual(checkSchema(thing, {}, root), ['/: missing required id']);
});

test('anyOf, enum, const, nullable types and records', () => {
  const s = { anyOf: [{ type: 'null' }, { type: 'string', enum: ['a', 'b'] }] };
  assert.deepEqual(checkSchema(s, null, root), []);
  assert.deepEqual(checkSchema(s, 'a', root), []);
  assert.equal(checkSchema(s, 'c', root).length, 1);
  assert.equal(checkSchema({ const: 'gre' }, 'ipip', root).length, 1);
  const record = { type: 'object', propertyNames: { type: 'string', pattern: '^[a-z]+$' }, additionalProperties: { type: 'number' } };
  assert.deepEqual(checkSchema(record, { a: 1 }, root), []);
  assert.equal(checkSchema(record, { A: 1, b: 'x' }, root).length, 2);
});

test('refuses keywords it does not implement rather than ignoring them', () => {
  assert.throws(() => checkSchema({ type: 'string', dependentRequired: {} }, 'x', root), /dependentRequired/);
  assert.throws(() => checkSchema({ $ref: '#/components/schemas/Nope' }, 'x', root), /does not resolve/);
});
