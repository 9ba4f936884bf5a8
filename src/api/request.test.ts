import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkParams, checkQuery, isJsonType, MAX_JSON_DEPTH, nestsDeeperThan, parseIfMatch, parseJsonBody, refuseBody } from './request.ts';

test('path ids are checked with the model and the error names the segment', () => {
  const ok = checkParams({ t: 'tenant id', id: 'prefix id' }, (n) => ({ t: 'acme', id: 'p1' })[n]);
  assert.deepEqual(ok, { ok: true, value: { t: 'acme', id: 'p1' } });
  for (const bad of ['x"; flush ruleset', '$(reboot)', '../..', '-rf', 'A', 'a'.repeat(33), 'a\u0000b', 'ünï', '']) {
    const r = checkParams({ t: 'tenant id' }, () => bad);
    assert.equal(r.ok, false, JSON.stringify(bad));
    if (r.ok) continue;
    assert.equal(r.error.status, 400);
    assert.match(r.error.message, /^path segment \{t\}: .* not a valid tenant id/);
    assert.deepEqual(r.error.issues!.map((i) => [i.path, i.field, i.code]), [['url', 't', 'invalid_id']]);
  }
});

test('query parameters: only the declared ones, once each, ids only', () => {
  assert.deepEqual(checkQuery({ before: 'rule id' }, { before: ['ssh'] }), { ok: true, value: { before: 'ssh' } });
  assert.deepEqual(checkQuery(undefined, {}), { ok: true, value: {} });
  const unknown = checkQuery({ before: 'rule id' }, { befor: ['ssh'] });
  assert.ok(!unknown.ok && /unknown query parameter; this route takes before/.test(unknown.error.message));
  const none = checkQuery(undefined, { x: ['1'] });
  assert.ok(!none.ok && /takes none/.test(none.error.message));
  const twice = checkQuery({ before: 'rule id' }, { before: ['a', 'b'] });
  assert.ok(!twice.ok && /more than once/.test(twice.error.message));
  const hostile = checkQuery({ before: 'rule id' }, { before: ['$(reboot)'] });
  assert.ok(!hostile.ok && hostile.error.issues![0]!.code === 'invalid_id');
});

test('If-Match: a revision, quoted or not; 0 is "must not exist"; refused where nothing is written', () => {
  assert.deepEqual(parseIfMatch(undefined, true), { ok: true, value: undefined });
  assert.deepEqual(parseIfMatch('0', true), { ok: true, value: 0 });
  assert.deepEqual(parseIfMatch(' "42" ', true), { ok: true, value: 42 });
  for (const bad of ['', '*', '-1', '1.5', 'W/"3"', '1e3', '9999999999999999', '42, 43']) assert.equal(parseIfMatch(bad, true).ok, false, bad);
  const get = parseIfMatch('3', false);
  assert.ok(!get.ok && get.error.issues![0]!.field === 'If-Match');
});

test('JSON content types', () => {
  for (const t of ['application/json', 'Application/JSON; charset=utf-8', 'application/merge-patch+json']) assert.ok(isJsonType(t), t);
  for (const t of [undefined, '', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx']) assert.ok(!isJsonType(t), String(t));
});

test('nesting depth is measured without parsing, strings and escapes skipped', () => {
  assert.equal(nestsDeeperThan('[[[]]]', 3), false);
  assert.equal(nestsDeeperThan('[[[[]]]]', 3), true);
  assert.equal(nestsDeeperThan('{"a":"[[[[[[\\"[[[["}', 1), false);
  assert.equal(nestsDeeperThan('['.repeat(1_000_000), MAX_JSON_DEPTH), true);
});

test('bodies: 415 when not JSON, 400 when empty, too deep or unparseable', () => {
  assert.equal((parseJsonBody('text/plain', '{}') as { error: { status: number } }).error.status, 415);
  assert.equal((parseJsonBody(undefined, '{}') as { error: { status: number } }).error.status, 415);
  for (const text of ['', '  ', '{', '{"a":1,}', "{'a':1}", 'NaN', '[' .repeat(65) + ']'.repeat(65)]) {
    const r = parseJsonBody('application/json', text);
    assert.ok(!r.ok && r.error.status === 400 && r.error.code === 'invalid_json', JSON.stringify(text));
  }
  assert.deepEqual(parseJsonBody('application/json', '{"a":[1]}'), { ok: true, value: { a: [1] } });
  assert.deepEqual(parseJsonBody('application/json', '"x"'), { ok: true, value: 'x' }, 'a scalar parses; the schema refuses it with a field error');
  assert.equal(refuseBody(' \n').ok, true);
  assert.equal(refuseBody('{}').ok, false);
});
