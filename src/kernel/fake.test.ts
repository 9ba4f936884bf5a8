/**
 * The contract suite on the fake kernel, plus what only the fake has: the canonical dump and
 * counting by hand.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contractSuite, must, type Backend } from './contract.ts';
import { fakeKernel, type FakeKernel } from './index.ts';
import { marksWith } from './marks.ts';

contractSuite({
  name: 'fake',
  available: () => true,
  gaps: { traffic: 'the fake carries no packets; counting is shown with count() in fake.test.ts' },
  make(): Backend {
    const k = fakeKernel(marksWith({ prefix: 'aeT' }));
    const sync = (r: { ok: boolean; error?: { message: string } }) => {
      if (!r.ok) throw new Error(`test setup failed: ${r.error?.message}`);
    };
    return {
      kernel: k,
      foreignNetnsName: (t) => `other-${t}`,
      foreign: {
        netns: async (name) => k.foreign.netns(name),
        veth: async (ns, a, b) => sync(k.foreign.veth(ns, a, b)),
        route: async (ns, r) => sync(k.foreign.route(ns, r)),
        rule: async (ns, r) => sync(k.foreign.rule(ns, r)),
        nftTable: async (ns, t) => sync(k.foreign.nftTable(ns, t)),
      },
      cleanup: async () => {},
    };
  },
});

describe('fake kernel', () => {
  const marks = marksWith({ prefix: 'ae' });

  async function tenant(k: FakeKernel): Promise<void> {
    must(await k.netns.add('ae-t-acme'));
    must(await k.links.addVeth({ a: { ns: null, name: 'aeacme0', ifindex: 1000 }, b: { ns: 'ae-t-acme', name: 'aeacme1', ifindex: 1001, mtu: 1400 }, owner: 'acme' }));
    must(await k.links.setUp(null, 'aeacme0', true));
    must(await k.links.setUp('ae-t-acme', 'aeacme1', true));
    must(await k.links.setUp('ae-t-acme', 'lo', true));
    must(await k.addrs.add(null, 'aeacme0', '192.0.2.1/31'));
    must(await k.addrs.add('ae-t-acme', 'aeacme1', '192.0.2.0/31'));
    must(await k.addrs.add('ae-t-acme', 'aeacme1', '2001:db8::2/127'));
    must(await k.routes.replace(null, { table: 100, dst: '203.0.113.0/25', nexthops: [{ dev: 'aeacme0', via: '192.0.2.0' }] }));
    must(await k.routes.replace('ae-t-acme', { table: 100, dst: '0.0.0.0/0', nexthops: [{ dev: 'aeacme1', via: '192.0.2.1' }] }));
    must(await k.rules.add('ae-t-acme', { family: 4, priority: 1000, table: 100, fwmark: 0xae, fwmask: 0xff }));
    must(await k.sysctl.set('ae-t-acme', 'net.ipv4.ip_forward', 1));
    must(
      await k.nft.applyTable('ae-t-acme', {
        family: 'inet',
        name: 'aefw',
        objects: [
          { chain: { family: 'inet', table: 'aefw', name: 'fwd', type: 'filter', hook: 'forward', prio: 0, policy: 'drop' } },
          { rule: { family: 'inet', table: 'aefw', chain: 'fwd', comment: 'web', expr: [{ match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 443 } }, { counter: null }, { accept: null }] } },
        ],
      }),
    );
  }

  it('dumps its state as canonical ip/nft text', async () => {
    const k = fakeKernel(marks);
    assert.equal(k.dump(), '');
    await tenant(k);
    assert.equal(
      k.dump(),
      [
        'netns add ae-t-acme',
        'ip link add aeacme0 index 1000 group 174 type veth peer name aeacme1 index 1001 mtu 1400 group 174 netns ae-t-acme',
        'ip link set aeacme0 alias anyedge:acme',
        'ip link set aeacme0 up',
        'ip addr add 192.0.2.1/31 dev aeacme0',
        'ip -4 route add 203.0.113.0/25 via 192.0.2.0 dev aeacme0 table 100 proto 174 metric 0',
        'ip -n ae-t-acme link set aeacme1 alias anyedge:acme',
        'ip -n ae-t-acme link set aeacme1 up',
        'ip -n ae-t-acme link set lo up',
        'ip -n ae-t-acme addr add 192.0.2.0/31 dev aeacme1',
        'ip -n ae-t-acme addr add 2001:db8::2/127 dev aeacme1',
        'ip -n ae-t-acme -4 route add 0.0.0.0/0 via 192.0.2.1 dev aeacme1 table 100 proto 174 metric 0',
        'ip -n ae-t-acme -4 rule add pref 1000 fwmark 0xae/0xff lookup 100',
        'ip netns exec ae-t-acme sysctl -w net.ipv4.ip_forward=1',
        'ip netns exec ae-t-acme nft -j add {"table":{"family":"inet","name":"aefw"}}',
        'ip netns exec ae-t-acme nft -j add {"chain":{"family":"inet","hook":"forward","name":"fwd","policy":"drop","prio":0,"table":"aefw","type":"filter"}}',
        'ip netns exec ae-t-acme nft -j add {"rule":{"chain":"fwd","comment":"web","expr":[{"match":{"left":{"payload":{"field":"dport","protocol":"tcp"}},"op":"==","right":443}},{"counter":{}},{"accept":null}],"family":"inet","table":"aefw"}}',
        '',
      ].join('\n'),
    );
  });

  it('dumps the same text however the same state was reached', async () => {
    const k1 = fakeKernel(marks);
    await tenant(k1);
    const k2 = fakeKernel(marks);
    // Different order, detours, and re-applies: a reconciler's path does not show in the state.
    must(await k2.netns.add('ae-t-zz'));
    await tenant(k2);
    must(await k2.routes.replace(null, { table: 100, dst: '203.0.113.0/25', nexthops: [{ dev: 'aeacme0' }] }));
    must(await k2.routes.replace(null, { table: 100, dst: '203.0.113.0/25', nexthops: [{ dev: 'aeacme0', via: '192.0.2.0' }] }));
    must(await k2.routes.replace(null, { table: 101, dst: '198.51.100.0/24', nexthops: [{ dev: 'aeacme0' }] }));
    must(await k2.routes.delete(null, { table: 101, dst: '198.51.100.0/24' }));
    must(await k2.addrs.add('ae-t-acme', 'aeacme1', '198.51.100.1/24'));
    must(await k2.addrs.delete('ae-t-acme', 'aeacme1', '198.51.100.1/24'));
    must(await k2.links.setUp('ae-t-acme', 'aeacme1', true));
    must(await k2.links.setMtu('ae-t-acme', 'aeacme1', 9000));
    must(await k2.links.setMtu('ae-t-acme', 'aeacme1', 1400));
    const fw = await k2.nft.listTable('ae-t-acme', { family: 'inet', name: 'aefw' });
    assert.ok(fw.ok);
    must(await k2.sysctl.set('ae-t-acme', 'net.ipv4.fib_multipath_hash_policy', 1));
    must(await k2.sysctl.set('ae-t-acme', 'net.ipv4.fib_multipath_hash_policy', 0));
    must(await k2.netns.delete('ae-t-zz'));
    assert.equal(k2.dump(), k1.dump());
  });

  it('deleting a namespace takes the far ends of its veth pairs and their routes', async () => {
    const k = fakeKernel(marks);
    await tenant(k);
    must(await k.netns.delete('ae-t-acme'));
    assert.equal(k.dump(), '');
    assert.deepEqual(must(await k.routes.list(null, 100)), []);
  });

  it('count() moves named and rule counters, which counters() reads back', async () => {
    const k = fakeKernel(marks);
    await tenant(k);
    const ref = { family: 'inet' as const, name: 'aefw' };
    must(k.count('ae-t-acme', ref, { rule: 'web' }, 2, 120));
    must(k.count('ae-t-acme', ref, { rule: 'web' }, 1, 60));
    assert.deepEqual(must(await k.nft.counters('ae-t-acme', ref)), [{ kind: 'rule', name: 'web', chain: 'fwd', handle: 2, packets: 3, bytes: 180 }]);
    assert.equal(k.count('ae-t-acme', ref, { counter: 'nope' }, 1, 1).ok, false);
  });

  it('lists the connected routes the kernel derives in the main table', async () => {
    const k = fakeKernel(marks);
    await tenant(k);
    assert.deepEqual(
      must(await k.routes.list('ae-t-acme', 254)).map((r) => [r.dst, r.protocol, r.metric, r.owned]),
      [
        ['192.0.2.0/31', 2, 0, false],
        ['2001:db8::2/127', 2, 256, false],
      ],
    );
  });
});
