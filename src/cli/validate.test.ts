// `anyedge validate` through the real bin, as a user runs it: exit code, stdout and stderr.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'anyedge.mjs');

function anyedge(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Writes `text` to a fresh temporary file and returns its path; removed after the test. */
function tempFile(t: { after(fn: () => void): void }, name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'anyedge-validate-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

test('the Acme example is valid: exit 0 and a one-line summary', () => {
  const r = anyedge('validate', 'examples/acme.yaml');
  assert.equal(r.err, '');
  assert.equal(r.code, 0);
  assert.equal(
    r.out,
    'examples/acme.yaml: valid — 2 data centers (4 servers), 2 tenants, 2 prefixes, 2 tunnels, 2 routes, 2 firewall rules, 1 DoS rule, 2 egress pools (2 addresses assigned)\n',
  );
});

// Line numbers are written beside each line that has a mistake, so the expected output can be
// checked by eye against the text.
const BROKEN = `dcs:
  ams:
    name: Amsterdam
    backbone: [192.0.2.1/30]
    servers:
      s1: { uplink: eth0, addresses: [192.0.2.18/28] }
      s1: { uplink: eth0, addresses: [192.0.2.19/28] }    # 7: duplicate server id
anycast:
  ranges: [198.51.100.0/28]
  greEndpoints: [198.51.100.1]
tenants:
  acme:
    name: Acme Corp
    prefixes:
      p1: { cidr: 203.0.113.0/25 }                        # 15: overlaps globex p0
    tunnels:
      gre1:
        customerEndpoint: 198.51.100.200
        mtu: 9001                                         # 19: MTU too big
      gre2:                                               # 20: no customerEndpoint
        key: 7
    routes:
      r1:
        prefix: 203.0.113.0/25
        via:
          - tunnel: gre3                                  # 26: no such tunnel
    firewall:
      default: { ingress: drop, egress: accept }
      rules:
        - id: ftp
          direction: ingress
          dst: [203.0.113.100]
          protocol: tcp
          dport: [20-21, 65536]                           # 34: port out of range
          action: accept
          colour: red                                     # 36: unknown field
  globex:
    name: Globex
    prefixes:
      p0:
        cidr: 203.0.113.64/26
      p1:
        cidr: 203.0.113.129/25                            # 43: host bits set
`;

test('a broken config: every error on stderr with its line and column, exit 1', (t) => {
  const file = tempFile(t, 'broken.yaml', BROKEN);
  const r = anyedge('validate', file);
  assert.equal(r.code, 1);
  assert.equal(r.out, '');
  assert.deepEqual(r.err.split('\n'), [
    `${file}:7:7: dcs/ams/servers/s1: "s1" is defined twice in this map (first at line 6); ids and fields must be unique where they stand — rename or remove one`,
    `${file}:15:7: tenants/acme/prefixes/p1: 203.0.113.0/25 overlaps tenants/globex/prefixes/p0 (203.0.113.64/26)`,
    `${file}:19:14: tenants/acme/tunnels/gre1.mtu: must be an integer 576–9000 bytes; got 9001 (GRE over a 1500-byte path fits 1476)`,
    // A missing field has no node of its own: the object it belongs in is shown.
    `${file}:20:7: tenants/acme/tunnels/gre2.customerEndpoint: required field is missing; add it`,
    `${file}:26:21: tenants/acme/routes/r1.via.0.tunnel: tenant acme has no tunnel "gre3"; did you mean "gre1"?; its tunnels: gre1, gre2`,
    `${file}:34:26: tenants/acme/firewall.rules.0.dport.1: 65536 is not a port: use 0–65535`,
    `${file}:36:11: tenants/acme/firewall.rules.0.colour: unknown field "colour"; known fields: id, description, direction, src, dst, protocol, sport, dport, tcpFlags, icmp, length, action, rateLimit`,
    `${file}:43:15: tenants/globex/prefixes/p1.cidr: "203.0.113.129/25" is not canonical (host bits are set after /25); use 203.0.113.128/25`,
    `${file}: invalid (8 errors)`,
    '',
  ]);
});

test('a YAML syntax error is a usage error (exit 2), with its line and column', (t) => {
  const file = tempFile(t, 'syntax.yaml', 'dcs:\n  ams:\n    name: [Amsterdam\n    backbone: []\n');
  const r = anyedge('validate', file);
  assert.equal(r.code, 2);
  assert.equal(r.out, '');
  const lines = r.err.trimEnd().split('\n');
  assert.match(lines[0]!, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: YAML syntax: `));
  assert.deepEqual(lines.at(-1), `${file}: not valid YAML (${lines.length - 1} error${lines.length === 2 ? '' : 's'}); nothing was checked`);
  const tabs = tempFile(t, 'tabs.yaml', 'dcs:\n\tams: {}\n');
  const r2 = anyedge('validate', tabs);
  assert.equal(r2.code, 2);
  assert.match(r2.err, new RegExp(`:2:1: YAML syntax: Tabs are not allowed as indentation`));
});

test('a file that cannot be read, or a missing or extra argument, is a usage error (exit 2)', (t) => {
  const missing = anyedge('validate', 'no/such/file.yaml');
  assert.equal(missing.code, 2);
  assert.equal(missing.err, 'no/such/file.yaml: cannot read: no such file\n');

  const dir = anyedge('validate', 'examples');
  assert.equal(dir.code, 2);
  assert.equal(dir.err, 'examples: cannot read: is a directory, not a file\n');

  const noArg = anyedge('validate');
  assert.equal(noArg.code, 2);
  assert.match(noArg.err, /missing required argument 'file'/);

  const extra = anyedge('validate', 'examples/acme.yaml', 'more.yaml');
  assert.equal(extra.code, 2);
  assert.match(extra.err, /too many arguments/);

  const unknown = anyedge('validat', 'examples/acme.yaml');
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown command 'validat'/);

  const twoDocs = tempFile(t, 'two.yaml', 'dcs: {}\n---\ntenants: {}\n');
  const r = anyedge('validate', twoDocs);
  assert.equal(r.code, 2);
  assert.match(r.err, /:2:1: YAML syntax: Source contains multiple documents/);
});

test('--help lists the validate command and exits 0', () => {
  const r = anyedge('--help');
  assert.equal(r.code, 0);
  assert.match(r.out, /^Usage: anyedge \[options\] \[command\]/);
  assert.match(r.out, /validate <file>/);
});
