// `anyedge egress …` in-process against the real API over a throwaway store.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startApiLab, type ApiLab } from './client-harness.ts';
import { egressDoc } from '../compile/egress/fixtures.ts';

let lab: ApiLab;
let dir: string;
let file: string;

before(async () => {
  lab = await startApiLab();
  dir = await mkdtemp(join(tmpdir(), 'anyedge-egress-cli-'));
  file = join(dir, 'egress.yaml');
  const doc = egressDoc();
  doc.egress.assign = { '198.51.100.64': { dc: 'lon' }, '198.51.100.65': { dc: 'lon' } };
  await writeFile(file, stringify(doc));
  const r = await lab.run(['apply', '-f', file, '--yes']);
  assert.equal(r.code, 0, r.err);
});

after(async () => {
  await lab.close();
  await rm(dir, { recursive: true, force: true });
});

const assigned = async (): Promise<string[]> => {
  const r = await lab.run(['egress', 'show', '--json']);
  assert.equal(r.code, 0, r.err);
  return (JSON.parse(r.out) as { items: { ip: string; dc: string; owner: { server?: string } }[] }).items.map((i) => `${i.ip} ${i.dc}${i.owner.server ? '/' + i.owner.server : ''}`);
};

test('geofeed: the same CSV from the file and from the store', async () => {
  const fromFile = await lab.run(['egress', 'geofeed', '-f', file]);
  assert.equal(fromFile.code, 0, fromFile.err);
  const fromStore = await lab.run(['egress', 'geofeed']);
  assert.equal(fromStore.code, 0, fromStore.err);
  const data = (s: string) => s.split('\n').filter((l) => l && !l.startsWith('#'));
  assert.deepEqual(data(fromFile.out), ['198.51.100.64/28,GB,,,', '198.51.100.80/28,FR,,,', '2001:db8:e0::/64,GB,,,']);
  assert.deepEqual(data(fromStore.out), data(fromFile.out));
  assert.match(fromStore.out, /^# anyedge egress geofeed \(RFC 8805\) from http:\/\/127\.0\.0\.1:\d+ revision \d+\n# prefix,country,region,city,postal\n/);
  const only = await lab.run(['egress', 'geofeed', '-f', file, '--assigned-only']);
  assert.deepEqual(data(only.out), ['198.51.100.64/31,GB,,,']);
});

test('allocate: a dry run writes nothing, a refused confirmation neither, --yes writes the plan in one go, then nothing is left to do', async () => {
  const before = await assigned();
  const dry = await lab.run(['egress', 'allocate', '--dry-run']);
  assert.equal(dry.code, 0, dry.err);
  assert.match(dry.out, /^\+ 198\.51\.100\.66 → par \(trusted\/GB\)$/m);
  assert.match(dry.out, /^\+ 2001:db8:e0::1 → lon\/s1 \(trusted\/GB\)$/m);
  assert.deepEqual(await assigned(), before);
  const noTty = await lab.run(['egress', 'allocate']);
  assert.equal(noTty.code, 1);
  assert.match(noTty.err, /refusing to write 9 egress assignment changes without confirmation: stdin is not a terminal; pass --yes/);
  const no = await lab.run(['egress', 'allocate'], { tty: true, answers: ['n'] });
  assert.equal(no.code, 1);
  assert.deepEqual(await assigned(), before);
  const yes = await lab.run(['egress', 'allocate', '--yes']);
  assert.equal(yes.code, 0, yes.err);
  assert.match(yes.out, /assigned 9, moved 0, released 0 at revision \d+/);
  assert.deepEqual(await assigned(), [
    '198.51.100.64 lon',
    '198.51.100.65 lon',
    '198.51.100.66 par',
    '198.51.100.80 lon',
    '198.51.100.81 par',
    '2001:db8:e0::1 lon/s1',
    '2001:db8:e0::2 lon/s2',
    '2001:db8:e0::3 lon/s3',
    '2001:db8:e0::4 lon/s4',
    '2001:db8:e0::5 par/s1',
    '2001:db8:e0::6 par/s2',
  ]);
  const again = await lab.run(['egress', 'allocate', '--yes']);
  assert.equal(again.code, 0);
  assert.match(again.out, /^nothing to do/);
  const table = await lab.run(['egress', 'show', '--dc', 'par']);
  assert.match(table.out, /198\.51\.100\.66\s.*par\s.*trusted\/GB\s.*gb-trusted\s.*16384\s.*s1:16384-32767 s2:32768-49151/);
});

test('allocate names a shortage and writes nothing', async () => {
  const r = await lab.run(['egress', 'allocate', '--servers', 'par=60', '--yes']);
  assert.equal(r.code, 1);
  assert.match(r.err, /dcs\/par: data center par needs 19 more egress addresses tagged trusted\/GB .* have only 13 free/);
  const bad = await lab.run(['egress', 'allocate', '--servers', 'par']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /write DC=N/);
});

test('assign moves an address to another data center; unassign removes it; bad input is a usage error', async () => {
  const move = await lab.run(['egress', 'assign', '198.51.100.67', 'par', '--yes']);
  assert.equal(move.code, 0, move.err);
  assert.match(move.out, /assigned 1, moved 0/);
  const back = await lab.run(['egress', 'assign', '198.51.100.67', 'lon', '--yes']);
  assert.equal(back.code, 0, back.err);
  assert.match(back.out, /moved 1/);
  assert.ok((await assigned()).includes('198.51.100.67 lon'));
  const un = await lab.run(['egress', 'unassign', '198.51.100.67', '--yes']);
  assert.equal(un.code, 0, un.err);
  assert.ok(!(await assigned()).some((a) => a.startsWith('198.51.100.67 ')));
  const gone = await lab.run(['egress', 'unassign', '198.51.100.67', '--yes']);
  assert.equal(gone.code, 1);
  assert.match(gone.err, /198\.51\.100\.67 is not assigned/);
  const badIp = await lab.run(['egress', 'assign', '198.51.100.300', 'lon', '--yes']);
  assert.equal(badIp.code, 2);
  assert.match(badIp.err, /IP "198\.51\.100\.300": .* 300 is above 255/);
  const refused = await lab.run(['egress', 'assign', '198.51.100.68', 'sin', '--yes']);
  assert.equal(refused.code, 1);
  assert.match(refused.err, /no data center "sin"/);
});
