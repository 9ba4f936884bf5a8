// Tables: plain aligned columns without a TTY (no trailing blanks, no escapes), boxes on one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderTable } from './table-view.ts';

const data = { head: ['id', 'cidr', 'description'], rows: [['p1', '203.0.113.0/25', 'lower half'], ['p22', '203.0.113.128/25', '']] };

test('plain: upper-case header, columns aligned by two spaces, no trailing blanks', () => {
  assert.equal(
    renderTable(data, false),
    ['ID   CIDR              DESCRIPTION', 'p1   203.0.113.0/25    lower half', 'p22  203.0.113.128/25', ''].join('\n'),
  );
});

test('TTY: a boxed table with every cell', () => {
  const out = renderTable(data, true);
  assert.match(out, /^┌/);
  for (const cell of ['p1', 'p22', '203.0.113.128/25', 'lower half', 'cidr']) assert.ok(out.includes(cell), cell);
  assert.ok(out.endsWith('┘\n'));
});
