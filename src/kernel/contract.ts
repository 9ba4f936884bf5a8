/**
 * The contract of the kernel boundary, as one test suite that every implementation runs: the fake
 * (fake.test.ts) and Linux (linux.test.ts). A case here states what the agent may rely on; a
 * backend that cannot show a case (the fake carries no packets) lists it in `gaps` with the
 * reason, and that case is left out of its run (not registered as a skipped test).
 *
 * Every case makes its own namespaces, named `<prefix>-<case>…`, so cases do not see each other
 * and the backend's cleanup finds all of them by prefix. Addresses come from the documentation
 * ranges only (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32), and nothing is
 * ever done in the host's namespace.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import type { Result } from '../lib/result.ts';
import type { KernelError, KernelErrorCode } from './errors.ts';
import type { Kernel } from './index.ts';
import type { Family } from './ipaddr.ts';
import { stableListing, type NftJson, type NftTableRef, type NftTableSpec } from './nft.ts';

/** One implementation under test, with the means to make objects that are not ours. */
export interface Backend {
  readonly kernel: Kernel;
  /** Creates, as someone else would, objects without our marks. */
  readonly foreign: {
    netns(name: string): Promise<void>;
    veth(ns: string, a: string, b: string): Promise<void>;
    route(ns: string, r: { table: number; dst: string; dev: string; protocol: number; metric?: number }): Promise<void>;
    rule(ns: string, r: { family: Family; priority: number; table: number }): Promise<void>;
    nftTable(ns: string, t: NftTableRef): Promise<void>;
  };
  /** A namespace name that does not carry the prefix but is unique to this run. */
  foreignNetnsName(tag: string): string;
  /** Sends `count` pings from `ns` to `addr`; whether all were answered. */
  ping?(ns: string, addr: string, count: number): Promise<boolean>;
  /** Removes every namespace this run made, ours and foreign; must not fail. */
  cleanup(): Promise<void>;
}

/** A backend's setup: whether it can run here (skipping or failing `t` if not), and how to make it. */
export interface BackendSetup {
  readonly name: string;
  available(t: TestContext): boolean;
  make(): Backend;
  /** Cases this backend cannot show, with the reason. */
  readonly gaps?: Readonly<Record<string, string>>;
}

/** Unwraps a result, failing the test with the kernel's message. */
export function must<T>(r: Result<T, KernelError>): T {
  if (!r.ok) assert.fail(`unexpected kernel error [${r.error.code}] ${r.error.message}`);
  return r.value;
}

/** Asserts a result failed with `code`; returns the error for more checks. */
export function fails(r: Result<unknown, KernelError>, code: KernelErrorCode): KernelError {
  if (r.ok) assert.fail(`expected a ${code} error, got success`);
  assert.equal(r.error.code, code, `expected ${code}, got ${r.error.code}: ${r.error.message}`);
  assert.ok(r.error.message.length > 0 && r.error.op.length > 0, 'an error names its operation and says what happened');
  return r.error;
}

/** Hostile or malformed names that must never reach a command. */
const HOSTILE = ['', '-n', '--help', '../etc', 'a b', 'x;reboot', '$(id)', 'a\nb', 'name/with/slash'];

/** The contract suite, run against one backend. */
export function contractSuite(setup: BackendSetup): void {
  describe(`kernel contract: ${setup.name}`, () => {
    let backend: Backend | null = null;
    const b = (): Backend => (backend ??= setup.make());
    const k = (): Kernel => b().kernel;
    const P = (): string => k().marks.prefix;
    /** A fresh namespace of ours for one case. */
    const mkNs = async (tag: string): Promise<string> => {
      const name = `${P()}-${tag}`;
      must(await k().netns.add(name));
      return name;
    };
    /** Two namespaces joined by a veth pair `<P>a<i>` (in a) – `<P>b<i>` (in b), both up. */
    const joined = async (ns1: string, ns2: string, i: number, opts: { up?: boolean } = {}): Promise<{ a: string; b: string }> => {
      const a = `${P()}a${i}`;
      const bb = `${P()}b${i}`;
      must(await k().links.addVeth({ a: { ns: ns1, name: a }, b: { ns: ns2, name: bb }, owner: 'test' }));
      if (opts.up !== false) {
        must(await k().links.setUp(ns1, a, true));
        must(await k().links.setUp(ns2, bb, true));
      }
      return { a, b: bb };
    };
    // A case the backend cannot show is left out, not registered as skipped: a skip would read
    // as a test that ran. The backend's test file says what it shows instead.
    const unlessGap = (name: string): typeof it | ((..._args: unknown[]) => void) => (setup.gaps?.[name] === undefined ? it : () => {});
    const ready = (t: TestContext): boolean => setup.available(t);

    after(async () => {
      if (backend) await backend.cleanup();
    });

    it('netns: add, list, exists, delete; twice is an error on add and success on delete', async (t) => {
      if (!ready(t)) return;
      const name = `${P()}-ns`;
      must(await k().netns.add(name));
      assert.ok(must(await k().netns.list()).includes(name));
      assert.equal(must(await k().netns.exists(name)), true);
      fails(await k().netns.add(name), 'exists');
      must(await k().netns.delete(name));
      assert.ok(!must(await k().netns.list()).includes(name));
      assert.equal(must(await k().netns.exists(name)), false);
      must(await k().netns.delete(name));
    });

    it('netns: refuses hostile names and names without our prefix; prune takes only ours', async (t) => {
      if (!ready(t)) return;
      for (const bad of [...HOSTILE, 'x'.repeat(65)]) {
        fails(await k().netns.add(bad), 'invalid');
        fails(await k().netns.delete(bad), 'invalid');
      }
      const foreign = b().foreignNetnsName('nsf');
      await b().foreign.netns(foreign);
      const e = fails(await k().netns.delete(foreign), 'invalid');
      assert.match(e.message, /prefix/);
      fails(await k().netns.add(b().foreignNetnsName('nsg')), 'invalid');
      const keep = await mkNs('pk');
      const drop = await mkNs('pd');
      const gone = must(await k().netns.prune([keep, `${P()}-ns`]));
      assert.ok(gone.includes(drop) && !gone.includes(keep) && !gone.includes(foreign));
      const left = must(await k().netns.list());
      assert.ok(left.includes(keep) && !left.includes(drop));
      assert.ok(!left.includes(foreign), 'list shows only ours');
      assert.equal(must(await k().netns.exists(foreign)), true, 'the foreign namespace is still there');
      must(await k().netns.delete(keep));
    });

    it('links: veth peers in 200 other namespaces all read back with their namespace', async (t) => {
      if (!ready(t)) return;
      // iproute2 6.1's `netns list-id` stops after ~130 ids: a server of a few hundred tenants
      // lost its peers' names and re-created their wires on every pass.
      const hub = await mkNs('hub');
      const spokes: string[] = [];
      for (let i = 0; i < 200; i++) {
        const ns = await mkNs(`s${i}`);
        spokes.push(ns);
        must(await k().links.addVeth({ a: { ns: hub, name: `${P()}h${i}` }, b: { ns, name: `${P()}p${i}` }, owner: 'test' }));
      }
      const peers = must(await k().links.list(hub)).filter((l) => l.kind === 'veth').map((l) => [l.name, l.peer?.ns] as const);
      assert.deepEqual(new Map(peers), new Map(spokes.map((ns, i) => [`${P()}h${i}`, ns])));
    });

    it('links: a veth pair across namespaces reads back exactly as created, with owner', async (t) => {
      if (!ready(t)) return;
      const na = await mkNs('la');
      const nb = await mkNs('lb');
      const a = `${P()}a0`;
      const bn = `${P()}b0`;
      must(await k().links.addVeth({ a: { ns: na, name: a, ifindex: 4100, mtu: 1400, mac: '02:00:5e:00:00:0a' }, b: { ns: nb, name: bn, ifindex: 4101, mac: '02:00:5e:00:00:0b' }, owner: 'acme' }));
      const la = must(await k().links.get(na, a));
      assert.deepEqual(la, {
        name: a,
        ifindex: 4100,
        kind: 'veth',
        mtu: 1400,
        mac: '02:00:5e:00:00:0a',
        up: false,
        carrier: false,
        alias: 'anyedge:acme',
        peer: { ns: nb, ifindex: 4101 },
        owned: true,
        owner: 'acme',
      });
      const lb = must(await k().links.get(nb, bn));
      assert.equal(lb?.mtu, 1500);
      assert.deepEqual(lb?.peer, { ns: na, ifindex: 4100 });
      // A new namespace has only lo, and it is not ours.
      const all = must(await k().links.list(na));
      assert.deepEqual(
        all.map((l) => [l.name, l.kind, l.owned]),
        [
          ['lo', 'loopback', false],
          [a, 'veth', true],
        ],
      );
      must(await k().links.setUp(na, a, true));
      assert.equal(must(await k().links.get(na, a))?.carrier, false, 'no carrier while the peer is down');
      must(await k().links.setUp(nb, bn, true));
      const up = must(await k().links.get(na, a));
      assert.equal(up?.up, true);
      assert.equal(up?.carrier, true);
      must(await k().links.setUp(na, a, true));
      must(await k().links.setMtu(na, a, 9000));
      assert.equal(must(await k().links.get(na, a))?.mtu, 9000);
      fails(await k().links.setMtu(na, a, 65536), 'invalid');
      must(await k().links.setAlias(na, a, null));
      const bare = must(await k().links.get(na, a));
      assert.equal(bare?.alias, null);
      assert.equal(bare?.owned, true, 'the group mark keeps a link ours without its alias');
      assert.equal(bare?.owner, '');
      must(await k().links.setAlias(na, a, 'anyedge:acme'));
      assert.equal(must(await k().links.get(na, a))?.owner, 'acme');
      must(await k().links.setUp(na, a, false));
      assert.equal(must(await k().links.get(na, a))?.up, false);
      assert.equal(must(await k().links.get(nb, bn))?.carrier, false);
    });

    it('links: refuses taken names and indexes, missing namespaces and hostile names', async (t) => {
      if (!ready(t)) return;
      const na = await mkNs('lx');
      const nb = await mkNs('ly');
      const a = `${P()}a0`;
      const bn = `${P()}b0`;
      must(await k().links.addVeth({ a: { ns: na, name: a, ifindex: 4200 }, b: { ns: nb, name: bn }, owner: 'acme' }));
      fails(await k().links.addVeth({ a: { ns: na, name: a }, b: { ns: nb, name: `${P()}b1` }, owner: 'acme' }), 'exists');
      fails(await k().links.addVeth({ a: { ns: na, name: `${P()}a1` }, b: { ns: nb, name: bn }, owner: 'acme' }), 'exists');
      fails(await k().links.addVeth({ a: { ns: na, name: `${P()}a2`, ifindex: 4200 }, b: { ns: nb, name: `${P()}b2` }, owner: 'acme' }), 'exists');
      fails(await k().links.addVeth({ a: { ns: na, name: `${P()}a3` }, b: { ns: `${P()}-nosuch`, name: `${P()}b3` }, owner: 'acme' }), 'not_found');
      fails(await k().links.addVeth({ a: { ns: `${P()}-nosuch`, name: `${P()}a4` }, b: { ns: na, name: `${P()}b4` }, owner: 'acme' }), 'not_found');
      const longName = `${P()}${'x'.repeat(16 - P().length)}`;
      for (const name of [...HOSTILE, longName, 'eth0', 'lo'])
        fails(await k().links.addVeth({ a: { ns: na, name }, b: { ns: nb, name: `${P()}b5` }, owner: 'acme' }), 'invalid');
      for (const owner of ['', 'Acme', 'a b', 'a:b', '../x'])
        fails(await k().links.addVeth({ a: { ns: na, name: `${P()}a6` }, b: { ns: nb, name: `${P()}b6` }, owner }), 'invalid');
      for (const bad of [{ ifindex: 0 }, { mtu: 67 }, { mac: '01:00:5e:00:00:01' }, { mac: 'zz' }])
        fails(await k().links.addVeth({ a: { ns: na, name: `${P()}a7`, ...bad }, b: { ns: nb, name: `${P()}b7` }, owner: 'acme' }), 'invalid');
      fails(await k().links.setUp(na, `${P()}zz`, true), 'not_found');
      fails(await k().links.setUp(`${P()}-nosuch`, 'lo', true), 'not_found');
      fails(await k().links.setUp(na, 'a b', true), 'invalid');
      fails(await k().links.list('../x'), 'invalid');
      // Nothing of the refused pairs was left behind.
      assert.deepEqual(
        must(await k().links.list(na)).map((l) => l.name),
        ['lo', a],
      );
    });

    it('links: move to another namespace keeps the index and the mark; delete takes both ends', async (t) => {
      if (!ready(t)) return;
      const na = await mkNs('ma');
      const nb = await mkNs('mb');
      const nc = await mkNs('mc');
      const a = `${P()}a0`;
      const bn = `${P()}b0`;
      must(await k().links.addVeth({ a: { ns: na, name: a, ifindex: 4300 }, b: { ns: nb, name: bn, ifindex: 4301 }, owner: 'acme' }));
      must(await k().links.move(nb, bn, nc));
      assert.equal(must(await k().links.get(nb, bn)), null);
      const moved = must(await k().links.get(nc, bn));
      assert.equal(moved?.ifindex, 4301);
      assert.equal(moved?.owner, 'acme');
      assert.deepEqual(must(await k().links.get(na, a))?.peer, { ns: nc, ifindex: 4301 });
      fails(await k().links.move(nb, bn, nc), 'not_found');
      fails(await k().links.move(nc, bn, `${P()}-nosuch`), 'not_found');
      fails(await k().links.move(nc, bn, nc), 'invalid');
      // A link named like ours in the target blocks the move.
      must(await k().links.addVeth({ a: { ns: na, name: `${P()}b0` }, b: { ns: na, name: `${P()}b9` }, owner: 'acme' }));
      fails(await k().links.move(na, `${P()}b0`, nc), 'exists');
      must(await k().links.delete(na, `${P()}b9`));
      must(await k().links.delete(na, a));
      assert.equal(must(await k().links.get(na, a)), null);
      assert.equal(must(await k().links.get(nc, bn)), null, 'deleting one end of a veth deletes the other');
      must(await k().links.delete(na, a));
    });

    it('links: refuses to touch a link without our mark; prune leaves it', async (t) => {
      if (!ready(t)) return;
      const na = await mkNs('lf');
      const f1 = `${P()}f1`;
      const f2 = `${P()}f2`;
      await b().foreign.veth(na, f1, f2);
      const fl = must(await k().links.get(na, f1));
      assert.equal(fl?.owned, false);
      assert.equal(fl?.owner, null);
      fails(await k().links.delete(na, f1), 'invalid');
      fails(await k().links.move(na, f1, await mkNs('lg')), 'invalid');
      const ours = await joined(na, na, 0, { up: false });
      const gone = must(await k().links.prune(na, []));
      assert.deepEqual(gone, [ours.a, ours.b].sort());
      assert.deepEqual(
        must(await k().links.list(na)).map((l) => l.name).sort(),
        ['lo', f1, f2].sort(),
      );
    });

    it('addrs: add and read back IPv4 and IPv6; twice is exists; delete is idempotent', async (t) => {
      if (!ready(t)) return;
      const na = await mkNs('aa');
      const { a } = await joined(na, await mkNs('ab'), 0);
      must(await k().addrs.add(na, a, '192.0.2.1/30'));
      must(await k().addrs.add(na, a, '2001:0db8:0:0::1/64'));
      must(await k().addrs.add(na, a, '192.0.2.5/30'));
      assert.deepEqual(must(await k().addrs.list(na, a)), [
        { link: a, family: 4, cidr: '192.0.2.1/30', scope: 'global' },
        { link: a, family: 4, cidr: '192.0.2.5/30', scope: 'global' },
        { link: a, family: 6, cidr: '2001:db8::1/64', scope: 'global' },
      ]);
      fails(await k().addrs.add(na, a, '192.0.2.1/30'), 'exists');
      fails(await k().addrs.add(na, a, '2001:db8::1/64'), 'exists');
      must(await k().addrs.delete(na, a, '192.0.2.5/30'));
      must(await k().addrs.delete(na, a, '192.0.2.5/30'));
      assert.deepEqual(
        must(await k().addrs.list(na, a)).map((x) => x.cidr),
        ['192.0.2.1/30', '2001:db8::1/64'],
      );
      fails(await k().addrs.add(na, `${P()}zz`, '192.0.2.9/30'), 'not_found');
      fails(await k().addrs.delete(na, `${P()}zz`, '192.0.2.9/30'), 'not_found');
      for (const bad of ['192.0.2.1/33', '192.0.2.1', 'x/24', '192.0.2.1/24 dev lo', '01.2.3.4/8', '2001:db8::g/64', '-4'])
        fails(await k().addrs.add(na, a, bad), 'invalid');
      // Bringing lo up gives it its addresses, as the kernel does.
      must(await k().links.setUp(na, 'lo', true));
      assert.deepEqual(must(await k().addrs.list(na, 'lo')), [
        { link: 'lo', family: 4, cidr: '127.0.0.1/8', scope: 'host' },
        { link: 'lo', family: 6, cidr: '::1/128', scope: 'host' },
      ]);
      // A link going down loses its IPv6 addresses (keep_addr_on_down=0) and keeps IPv4 ones.
      must(await k().links.setUp(na, a, false));
      assert.deepEqual(
        must(await k().addrs.list(na, a)).map((x) => x.cidr),
        ['192.0.2.1/30'],
      );
    });

    it('addrs: host addresses (/32, /128) put no route into the main table; a subnet does', async (t) => {
      if (!ready(t)) return;
      const na = await mkNs('ha');
      const { a } = await joined(na, await mkNs('hb'), 0);
      must(await k().addrs.add(na, a, '198.51.100.9/32'));
      must(await k().addrs.add(na, a, '2001:db8:1::9/128'));
      must(await k().addrs.add(na, a, '2001:db8:2::1/64'));
      const main = must(await k().routes.list(na, 254)).map((r) => r.dst);
      assert.deepEqual(main.filter((d) => d.startsWith('198.51.100.') || d.startsWith('2001:db8:')), ['2001:db8:2::/64']);
    });

    it('routes: replace reads back exactly; twice is once; metrics are keys', async (t) => {
      if (!ready(t)) return;
      const na = await mkNs('ra');
      const { a } = await joined(na, await mkNs('rb'), 0);
      must(await k().addrs.add(na, a, '198.51.100.1/30'));
      must(await k().addrs.add(na, a, '2001:db8:100::1/64'));
      const spec = { table: 100, dst: '203.0.113.0/25', nexthops: [{ dev: a, via: '198.51.100.2' }] };
      must(await k().routes.replace(na, spec));
      const once = must(await k().routes.list(na, 100));
      must(await k().routes.replace(na, spec));
      assert.deepEqual(must(await k().routes.list(na, 100)), once);
      must(await k().routes.replace(na, { table: 100, dst: '203.0.113.0/25', metric: 20, nexthops: [{ dev: a }] }));
      must(await k().routes.replace(na, { table: 100, dst: '2001:db8:200::/48', nexthops: [{ dev: a, via: '2001:db8:100::2' }] }));
      assert.deepEqual(must(await k().routes.list(na, 100)), [
        { family: 4, table: 100, dst: '203.0.113.0/25', metric: 0, protocol: 174, type: 'unicast', nexthops: [{ dev: a, via: '198.51.100.2', weight: 1, dead: false }], owned: true },
        { family: 4, table: 100, dst: '203.0.113.0/25', metric: 20, protocol: 174, type: 'unicast', nexthops: [{ dev: a, weight: 1, dead: false }], owned: true },
        { family: 6, table: 100, dst: '2001:db8:200::/48', metric: 1024, protocol: 174, type: 'unicast', nexthops: [{ dev: a, via: '2001:db8:100::2', weight: 1, dead: false }], owned: true },
      ]);
      // Replace changes the next hop in place.
      must(await k().routes.replace(na, { table: 100, dst: '203.0.113.0/25', nexthops: [{ dev: a }] }));
      assert.deepEqual(must(await k().routes.list(na, 100))[0]?.nexthops, [{ dev: a, weight: 1, dead: false }]);
      must(await k().routes.delete(na, { table: 100, dst: '203.0.113.0/25', metric: 20 }));
      must(await k().routes.delete(na, { table: 100, dst: '203.0.113.0/25', metric: 20 }));
      assert.deepEqual(
        must(await k().routes.list(na, 100)).map((r) => `${r.dst} ${r.metric}`),
        ['203.0.113.0/25 0', '2001:db8:200::/48 1024'],
      );
      assert.deepEqual(must(await k().routes.list(na, 101)), [], 'a table never used is empty');
      const gone = must(await k().routes.prune(na, 100, [{ table: 100, dst: '2001:db8:200::/48' }]));
      assert.deepEqual(
        gone.map((r) => r.dst),
        ['203.0.113.0/25'],
      );
    });

    it('routes: an onlink gateway needs no subnet on its link, reads back onlink, and the same /32 may sit on several links', async (t) => {
      if (!ready(t)) return;
      const na = await mkNs('oa');
      const { a } = await joined(na, await mkNs('ob'), 0);
      const { a: a2 } = await joined(na, await mkNs('oc'), 1);
      must(await k().addrs.add(na, a, '192.0.2.129/32'));
      must(await k().addrs.add(na, a2, '192.0.2.129/32'));
      // Without onlink the kernel refuses a gateway no subnet of the link covers.
      const off = await k().routes.replace(na, { table: 100, dst: '203.0.113.0/25', nexthops: [{ dev: a, via: '192.0.2.130' }] });
      assert.equal(off.ok ? null : off.error.code, 'invalid');
      must(await k().routes.replace(na, { table: 100, dst: '203.0.113.0/25', nexthops: [{ dev: a, via: '192.0.2.130', onlink: true }] }));
      must(await k().routes.replace(na, { table: 100, dst: '203.0.113.128/25', nexthops: [{ dev: a2, via: '192.0.2.130', onlink: true }] }));
      assert.deepEqual(
        must(await k().routes.list(na, 100)).map((r) => [r.dst, r.nexthops]),
        [
          ['203.0.113.0/25', [{ dev: a, via: '192.0.2.130', weight: 1, dead: false, onlink: true }]],
          ['203.0.113.128/25', [{ dev: a2, via: '192.0.2.130', weight: 1, dead: false, onlink: true }]],
        ],
      );
      const bad = await k().routes.replace(na, { table: 100, dst: '203.0.113.0/25', nexthops: [{ dev: a, onlink: true }] });
      assert.equal(bad.ok ? null : bad.error.code, 'invalid');
    });

    it('routes: multipath with weights reads back; a link going down kills its next hop', async (t) => {
      if (!ready(t)) return;
      const na = await mkNs('wa');
      const nb = await mkNs('wb');
      const l0 = await joined(na, nb, 0);
      const l1 = await joined(na, nb, 1);
      must(await k().addrs.add(na, l0.a, '198.51.100.1/30'));
      must(await k().addrs.add(na, l1.a, '198.51.100.5/30'));
      must(await k().addrs.add(na, l0.a, '2001:db8:1::1/64'));
      must(await k().addrs.add(na, l1.a, '2001:db8:2::1/64'));
      must(
        await k().routes.replace(na, {
          table: 100,
          dst: '203.0.113.0/24',
          nexthops: [
            { dev: l1.a, via: '198.51.100.6', weight: 1 },
            { dev: l0.a, via: '198.51.100.2', weight: 3 },
          ],
        }),
      );
      must(
        await k().routes.replace(na, {
          table: 100,
          dst: '2001:db8:ff::/48',
          nexthops: [
            { dev: l0.a, via: '2001:db8:1::2', weight: 5 },
            { dev: l1.a, via: '2001:db8:2::2', weight: 2 },
          ],
        }),
      );
      must(await k().routes.replace(na, { table: 100, dst: '192.0.2.0/28', nexthops: [{ dev: l1.a }] }));
      const routes = must(await k().routes.list(na, 100));
      assert.deepEqual(
        routes.map((r) => [r.dst, r.nexthops]),
        [
          ['192.0.2.0/28', [{ dev: l1.a, weight: 1, dead: false }]],
          [
            '203.0.113.0/24',
            [
              { dev: l0.a, via: '198.51.100.2', weight: 3, dead: false },
              { dev: l1.a, via: '198.51.100.6', weight: 1, dead: false },
            ],
          ],
          [
            '2001:db8:ff::/48',
            [
              { dev: l0.a, via: '2001:db8:1::2', weight: 5, dead: false },
              { dev: l1.a, via: '2001:db8:2::2', weight: 2, dead: false },
            ],
          ],
        ],
      );
      // l1 down: the single-path route through it goes, the IPv4 multipath route keeps l0 with
      // l1's hop dead.
      must(await k().links.setUp(na, l1.a, false));
      const after = must(await k().routes.list(na, 100)).filter((r) => r.family === 4);
      assert.deepEqual(
        after.map((r) => [r.dst, r.nexthops.map((h) => [h.dev, h.dead])]),
        [
          [
            '203.0.113.0/24',
            [
              [l0.a, false],
              [l1.a, true],
            ],
          ],
        ],
      );
    });

    it('routes: refuses bad input, missing or down links, off-link gateways, and others\' routes', async (t) => {
      if (!ready(t)) return;
      const na = await mkNs('rf');
      const { a } = await joined(na, await mkNs('rg'), 0);
      must(await k().addrs.add(na, a, '198.51.100.1/30'));
      const bad = [
        { table: 100, dst: '203.0.113.1/25', nexthops: [{ dev: a }] },
        { table: 0, dst: '203.0.113.0/25', nexthops: [{ dev: a }] },
        { table: 100, dst: '203.0.113.0/25', nexthops: [] },
        { table: 100, dst: '203.0.113.0/25 table 255', nexthops: [{ dev: a }] },
        { table: 100, dst: '203.0.113.0/25', nexthops: [{ dev: 'a b' }] },
        { table: 100, dst: '203.0.113.0/25', nexthops: [{ dev: a, via: '2001:db8::1' }] },
        {
          table: 100,
          dst: '203.0.113.0/25',
          nexthops: [
            { dev: a, weight: 0 },
            { dev: a, via: '198.51.100.2' },
          ],
        },
        { table: 100, dst: '203.0.113.0/25', metric: -1, nexthops: [{ dev: a }] },
      ];
      for (const spec of bad) fails(await k().routes.replace(na, spec), 'invalid');
      fails(await k().routes.replace(na, { table: 100, dst: '203.0.113.0/25', nexthops: [{ dev: `${P()}zz` }] }), 'not_found');
      fails(await k().routes.replace(na, { table: 100, dst: '203.0.113.0/25', nexthops: [{ dev: a, via: '192.0.2.77' }] }), 'invalid');
      fails(await k().routes.replace(`${P()}-nosuch`, { table: 100, dst: '203.0.113.0/25', nexthops: [{ dev: a }] }), 'not_found');
      must(await k().links.setUp(na, a, false));
      fails(await k().routes.replace(na, { table: 100, dst: '203.0.113.0/25', nexthops: [{ dev: a }] }), 'invalid');
      must(await k().links.setUp(na, a, true));
      // Someone else's route (protocol static) holds 203.0.113.128/25 metric 0 in our table.
      await b().foreign.route(na, { table: 100, dst: '203.0.113.128/25', dev: a, protocol: 4 });
      const theirs = must(await k().routes.list(na, 100));
      assert.deepEqual(
        theirs.map((r) => [r.dst, r.protocol, r.owned]),
        [['203.0.113.128/25', 4, false]],
      );
      fails(await k().routes.replace(na, { table: 100, dst: '203.0.113.128/25', nexthops: [{ dev: a }] }), 'exists');
      must(await k().routes.delete(na, { table: 100, dst: '203.0.113.128/25' }));
      assert.deepEqual(must(await k().routes.prune(na, 100, [])), []);
      assert.deepEqual(must(await k().routes.list(na, 100)), theirs, 'their route is still there');
    });

    it('rules: fwmark/mask rules read back; twice is exists; only our band is touched', async (t) => {
      if (!ready(t)) return;
      const na = await mkNs('ua');
      const before = must(await k().rules.list(na));
      assert.ok(before.every((r) => !r.owned));
      const r4 = { family: 4 as const, priority: 1000, table: 100, fwmark: 0xae, fwmask: 0xff };
      const r6 = { family: 6 as const, priority: 1000, table: 100, fwmark: 0xae };
      const r4b = { family: 4 as const, priority: 1001, table: 101 };
      must(await k().rules.add(na, r4));
      must(await k().rules.add(na, r6));
      must(await k().rules.add(na, r4b));
      fails(await k().rules.add(na, r4), 'exists');
      assert.deepEqual(
        must(await k().rules.list(na)).filter((r) => r.owned),
        [
          { family: 4, priority: 1000, action: 'lookup', table: 100, fwmark: 0xae, fwmask: 0xff, selectors: [], owned: true },
          { family: 4, priority: 1001, action: 'lookup', table: 101, selectors: [], owned: true },
          { family: 6, priority: 1000, action: 'lookup', table: 100, fwmark: 0xae, fwmask: 0xffffffff, selectors: [], owned: true },
        ],
      );
      for (const spec of [
        { family: 4 as const, priority: 999, table: 100 },
        { family: 4 as const, priority: 1000, table: 254 },
        { family: 4 as const, priority: 1000, table: 100, fwmask: 0xff },
        { family: 4 as const, priority: 1000, table: 100, fwmark: 0 },
        { family: 4 as const, priority: 1000, table: 100, fwmark: 2 ** 32 },
        { family: 5 as unknown as 4, priority: 1000, table: 100 },
      ])
        fails(await k().rules.add(na, spec), 'invalid');
      await b().foreign.rule(na, { family: 4, priority: 500, table: 100 });
      await b().foreign.rule(na, { family: 4, priority: 1500, table: 50 });
      must(await k().rules.delete(na, r4b));
      must(await k().rules.delete(na, r4b));
      const gone = must(await k().rules.prune(na, [r6]));
      assert.deepEqual(
        gone.map((r) => [r.family, r.priority]),
        [[4, 1000]],
      );
      const left = must(await k().rules.list(na));
      assert.deepEqual(
        left.filter((r) => r.owned).map((r) => [r.family, r.priority]),
        [[6, 1000]],
      );
      assert.ok(left.some((r) => r.priority === 500 && !r.owned) && left.some((r) => r.priority === 1500 && !r.owned), 'others\' rules stay');
      assert.deepEqual(
        left.filter((r) => !r.owned && r.priority !== 500 && r.priority !== 1500),
        before,
        'the kernel\'s default rules are untouched',
      );
    });

    it('sysctl: per namespace; refuses unknown keys, bad values and keys outside net.', async (t) => {
      if (!ready(t)) return;
      const na = await mkNs('sa');
      const nb = await mkNs('sb');
      assert.equal(must(await k().sysctl.get(na, 'net.ipv4.ip_forward')), '0');
      must(await k().sysctl.set(na, 'net.ipv4.ip_forward', 1));
      must(await k().sysctl.set(na, 'net.ipv4.ip_forward', 1));
      assert.equal(must(await k().sysctl.get(na, 'net.ipv4.ip_forward')), '1');
      assert.equal(must(await k().sysctl.get(nb, 'net.ipv4.ip_forward')), '0', 'another namespace is not affected');
      must(await k().sysctl.set(na, 'net.ipv4.fib_multipath_hash_policy', '1'));
      assert.equal(must(await k().sysctl.get(na, 'net/ipv4/fib_multipath_hash_policy')), '1');
      const { a } = await joined(na, nb, 0);
      must(await k().sysctl.set(na, `net.ipv4.conf.${a}.rp_filter`, 2));
      assert.equal(must(await k().sysctl.get(na, `net.ipv4.conf.${a}.rp_filter`)), '2');
      fails(await k().sysctl.get(na, 'net.ipv4.conf.nosuchlink.rp_filter'), 'not_found');
      fails(await k().sysctl.get(na, 'net.ipv4.no_such_key'), 'not_found');
      fails(await k().sysctl.set(na, 'net.ipv4.no_such_key', 1), 'not_found');
      fails(await k().sysctl.set(na, 'net.ipv4.fib_multipath_hash_policy', 9), 'invalid');
      fails(await k().sysctl.set(na, 'net.ipv4.ip_forward', 'abc'), 'invalid');
      fails(await k().sysctl.set(na, 'net.ipv4.ip_forward', '1\n0'), 'invalid');
      for (const key of ['kernel.panic', 'vm.swappiness', 'net', 'net..ipv4', 'net.ipv4/../../kernel/panic', '../net/ipv4/ip_forward', 'net.ipv4.ip_forward ']) {
        fails(await k().sysctl.set(na, key, 1), 'invalid');
        fails(await k().sysctl.get(na, key), 'invalid');
      }
      fails(await k().sysctl.get(`${P()}-nosuch`, 'net.ipv4.ip_forward'), 'not_found');
    });

    const fw = (table: string, policy: 'accept' | 'drop', extra: NftTableSpec['objects'] = []): NftTableSpec => ({
      family: 'inet',
      name: table,
      objects: [
        { counter: { family: 'inet', table, name: 'pings', packets: 0, bytes: 0 } },
        { chain: { family: 'inet', table, name: 'input', type: 'filter', hook: 'input', prio: 0, policy } },
        { chain: { family: 'inet', table, name: 'icmp' } },
        {
          rule: {
            family: 'inet',
            table,
            chain: 'input',
            comment: 'icmp-in',
            expr: [
              { match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: '198.51.100.1' } },
              { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'icmp' } },
              { counter: { packets: 0, bytes: 0 } },
              { counter: 'pings' },
              { jump: { target: 'icmp' } },
            ],
          },
        },
        { rule: { family: 'inet', table, chain: 'icmp', expr: [{ accept: null }] } },
        ...extra,
      ],
    });
    /** What listing the spec's table shows: nft lists stateful objects, then chains, then rules. */
    const listed = (spec: NftTableSpec): NftJson => {
      const rank = (o: NftTableSpec['objects'][number]) => ('rule' in o ? 2 : 'chain' in o ? 1 : 0);
      return { nftables: [{ table: { family: spec.family, name: spec.name } }, ...[...spec.objects].sort((x, y) => rank(x) - rank(y))] };
    };

    it('nft: a table applies as one transaction and reads back exactly; re-apply is idempotent', async (t) => {
      if (!ready(t)) return;
      const na = await mkNs('na');
      const table = `${P()}fw`;
      const ref = { family: 'inet' as const, name: table };
      const spec = fw(table, 'accept');
      must(await k().nft.applyTable(na, spec));
      const first = must(await k().nft.listTable(na, ref));
      assert.deepEqual(stableListing(first), listed(spec));
      must(await k().nft.applyTable(na, spec));
      assert.deepEqual(stableListing(must(await k().nft.listTable(na, ref))), listed(spec));
      assert.deepEqual(must(await k().nft.listTables(na)), [{ family: 'inet', name: table, owned: true }]);
      // A changed spec replaces the table whole: the policy changes, the extra chain appears.
      const next = fw(table, 'drop', [{ chain: { family: 'inet', table, name: 'extra' } }]);
      must(await k().nft.applyTable(na, next));
      assert.deepEqual(stableListing(must(await k().nft.listTable(na, ref))), listed(next));
      // Back to the first: the extra chain is gone again.
      must(await k().nft.applyTable(na, spec));
      assert.deepEqual(stableListing(must(await k().nft.listTable(na, ref))), listed(spec));
      assert.deepEqual(
        must(await k().nft.counters(na, ref)).map((c) => [c.kind, c.name, c.chain ?? null, c.packets, c.bytes]),
        [
          ['named', 'pings', null, 0, 0],
          ['rule', 'icmp-in', 'input', 0, 0],
        ],
      );
      must(await k().nft.deleteTable(na, ref));
      must(await k().nft.deleteTable(na, ref));
      fails(await k().nft.listTable(na, ref), 'not_found');
      assert.deepEqual(must(await k().nft.listTables(na)), []);
    });

    it('nft: a ruleset with an error leaves the previous ruleset intact', async (t) => {
      if (!ready(t)) return;
      const na = await mkNs('nb');
      const table = `${P()}fw`;
      const ref = { family: 'inet' as const, name: table };
      const good = fw(table, 'accept');
      must(await k().nft.applyTable(na, good));
      // The policy change comes first in the batch, the broken jump last: nothing may apply.
      const broken = fw(table, 'drop', [{ rule: { family: 'inet', table, chain: 'input', expr: [{ jump: { target: 'nosuchchain' } }] } }]);
      fails(await k().nft.applyTable(na, broken), 'not_found');
      assert.deepEqual(stableListing(must(await k().nft.listTable(na, ref))), listed(good));
      const dangling = fw(table, 'drop', [{ rule: { family: 'inet', table, chain: 'nosuchchain', expr: [{ accept: null }] } }]);
      fails(await k().nft.applyTable(na, dangling), 'not_found');
      assert.deepEqual(stableListing(must(await k().nft.listTable(na, ref))), listed(good));
      // A new table whose batch fails is not created at all.
      const other = `${P()}fx`;
      fails(await k().nft.applyTable(na, fw(other, 'drop', [{ rule: { family: 'inet', table: other, chain: 'input', expr: [{ goto: { target: 'nope' } }] } }])), 'not_found');
      fails(await k().nft.listTable(na, { family: 'inet', name: other }), 'not_found');
    });

    it('nft: refuses others\' tables and batches reaching outside ours', async (t) => {
      if (!ready(t)) return;
      const na = await mkNs('nc');
      const theirs = { family: 'inet' as const, name: 'filter' };
      await b().foreign.nftTable(na, theirs);
      const table = `${P()}fw`;
      must(await k().nft.applyTable(na, fw(table, 'accept')));
      fails(await k().nft.deleteTable(na, theirs), 'invalid');
      fails(await k().nft.applyTable(na, { ...theirs, objects: [] }), 'invalid');
      fails(await k().nft.apply(na, { nftables: [{ flush: { ruleset: null } }] }), 'invalid');
      fails(await k().nft.apply(na, { nftables: [{ delete: { table: theirs } }] }), 'invalid');
      fails(await k().nft.apply(na, { nftables: [{ add: { chain: { family: 'inet', table: 'filter', name: 'x' } } }] }), 'invalid');
      // An object naming another table inside our spec is refused before nft runs.
      fails(await k().nft.applyTable(na, { family: 'inet', name: table, objects: [{ chain: { family: 'inet', table: 'filter', name: 'x' } }] }), 'invalid');
      fails(await k().nft.applyTable(na, { family: 'inet; flush ruleset' as 'inet', name: table, objects: [] }), 'invalid');
      fails(await k().nft.listTable(na, { family: 'inet', name: 'a b' }), 'invalid');
      const gone = must(await k().nft.prune(na, []));
      assert.deepEqual(gone, [{ family: 'inet', name: table }]);
      assert.deepEqual(must(await k().nft.listTables(na)), [{ family: 'inet', name: 'filter', owned: false }]);
    });

    void unlessGap('traffic')('nft: counters read back after real traffic between two namespaces', async (t: TestContext) => {
      if (!ready(t)) return;
      const ping = b().ping;
      assert.ok(ping, 'a backend without a gap for traffic must ping');
      const na = await mkNs('pa');
      const nb = await mkNs('pb');
      const { a, b: bn } = await joined(na, nb, 0);
      must(await k().addrs.add(na, a, '198.51.100.1/30'));
      must(await k().addrs.add(nb, bn, '198.51.100.2/30'));
      const table = `${P()}fw`;
      const ref = { family: 'inet' as const, name: table };
      must(await k().nft.applyTable(nb, fw(table, 'accept')));
      assert.equal(await ping.call(b(), na, '198.51.100.2', 3), true, 'the pings are answered');
      const counters = must(await k().nft.counters(nb, ref));
      // Echo requests only: the replies leave through output, which has no chain here.
      assert.deepEqual(
        counters.map((c) => [c.name, c.packets]),
        [
          ['pings', 3],
          ['icmp-in', 3],
        ],
      );
      for (const c of counters) assert.equal(c.bytes, 3 * 84, 'an 84-byte echo request (20 IP + 8 ICMP + 56 data) each');
      // With policy drop and no rule accepting them, the pings go unanswered and are not counted.
      must(
        await k().nft.applyTable(nb, {
          family: 'inet',
          name: table,
          objects: [{ chain: { family: 'inet', table, name: 'input', type: 'filter', hook: 'input', prio: 0, policy: 'drop' } }],
        }),
      );
      assert.equal(await ping.call(b(), na, '198.51.100.2', 1), false, 'policy drop took effect');
    });
  });
}

