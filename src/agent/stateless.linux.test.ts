/**
 * Stateless anycast GRE, shown with two server namespaces: the reconciler provisions the same
 * config into each (as ams/s1 and ams/s2, each with its own programs and maps), and the same
 * packets run through each server's programs (BPF_PROG_TEST_RUN, inside the server's own
 * namespaces) come out byte-identical: whichever server ECMP or anycast picks, the customer
 * router and the tenant see the same packet.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { needs } from '../testkit/needs.ts';
import { NetLab } from '../testkit/netlab.ts';
import { acmeConfig } from './fixtures.ts';
import { compileServer } from '../compile/server.ts';
import { linuxKernel, marksWith, type Marks } from '../kernel/index.ts';
import { linuxBpfMaps } from '../kernel/bpf/maps-api.ts';
import { linuxAttach } from '../kernel/attach.ts';
import { progRun, skbCtx } from '../kernel/bpf/bpftool.ts';
import { loadEdge, unloadEdge, type EdgePins } from '../kernel/bpf/loader.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';
import { buildFrame, type LayerSpec } from '../wire/build.ts';
import { decodeFrame, findLayer } from '../wire/frame.ts';
import { apply, plan } from './reconcile.ts';

const lab = new NetLab('S');
const tag = (process.pid % 10000).toString(36);
const servers: Array<{ name: 's1' | 's2'; marks: Marks; pins?: EdgePins }> = [
  { name: 's1', marks: marksWith({ prefix: `u${tag}a` }) },
  { name: 's2', marks: marksWith({ prefix: `u${tag}b` }) },
];

after(async () => {
  for (const s of servers) {
    await linuxKernel(s.marks).netns.prune([]);
    if (s.pins) await unloadEdge(s.pins);
  }
  await lab.destroy();
});

const XDP_REDIRECT = 4;
const TC_ACT_OK = 0;

test('two servers given the same config turn the same packets into byte-identical output', async (t) => {
  if (!needs(t, { root: true, tools: ['ip', 'tc', 'bpftool', 'nsenter', 'nft'] })) return;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  const config = acmeConfig();
  const tunnels: Array<{ ns: string; ifindex: number }> = [];
  for (const s of servers) {
    await lab.addNs(s.name);
    await lab.addNs(`x${s.name}`);
    await lab.veth(s.name, 'eth0', `x${s.name}`, 'eth0');
    const pins = await loadEdge(`${lab.prefix}${s.name}`);
    if (!pins.ok) assert.fail(pins.error.message);
    s.pins = pins.value;
    const d = compileServer(config, { dc: 'ams', server: s.name }, { marks: s.marks, serverNs: lab.ns(s.name), linkPool: '192.0.2.64/26' });
    if (!d.ok) assert.fail(`${d.error.path}: ${d.error.message}`);
    const env = { kernel: linuxKernel(s.marks), bpf: linuxBpfMaps(pins.value), attach: linuxAttach(pins.value) };
    const p = await plan(env, d.value);
    if (!p.ok) assert.fail(p.error.message);
    const r = await apply(p.value);
    assert.equal(r.failed, undefined, r.failed?.error.message);
    const acme = d.value.encap.find((e) => e.path === 'tenants/acme/tunnels/gre1');
    const dev = d.value.tunnels.find((x) => x.path === 'tenants/acme/tunnels/gre1');
    assert.ok(acme && dev);
    tunnels.push({ ns: dev.ns, ifindex: acme.ifindex });
  }
  assert.equal(tunnels[0]!.ifindex, tunnels[1]!.ifindex, 'the tunnel device has the same index on both servers');

  const inner: LayerSpec[] = [
    { kind: 'ipv4', src: '192.0.2.10', dst: '203.0.113.100', ident: 99, df: true },
    { kind: 'tcp', srcPort: 40000, dstPort: 21, flags: 'S', mss: 1460 },
  ];
  // Toward the customer: a SYN routed into acme's tunnel device (the skb program runs on that
  // device, in the tenant namespace of each server).
  const toCustomer = buildFrame([{ kind: 'eth' }, ...inner]);
  // From the customer: its router's GRE to the anycast endpoint, arriving on a server uplink.
  const fromCustomer = buildFrame([
    { kind: 'eth' },
    { kind: 'ipv4', src: '198.51.100.200', dst: '198.51.100.1' },
    { kind: 'gre' },
    { kind: 'ipv4', src: '203.0.113.100', dst: '192.0.2.10', df: true },
    { kind: 'tcp', srcPort: 21, dstPort: 40000, flags: 'SA', mss: 1460 },
  ]);

  const outputs: Array<{ encap: Buffer; decap: Buffer }> = [];
  for (const [i, s] of servers.entries()) {
    const tun = tunnels[i]!;
    const enc = await progRun(s.pins!.progs.tcGreEncap, Buffer.from(toCustomer), { ctxIn: skbCtx(tun.ifindex), netns: tun.ns });
    assert.ok(enc.ok, enc.ok ? '' : enc.error.message);
    assert.equal(enc.value.retval, TC_ACT_OK);
    const dec = await progRun(s.pins!.progs.xdpEdge, Buffer.from(fromCustomer), { netns: lab.ns(s.name) });
    assert.ok(dec.ok, dec.ok ? '' : dec.error.message);
    assert.equal(dec.value.retval, XDP_REDIRECT);
    outputs.push({ encap: enc.value.dataOut, decap: dec.value.dataOut });
  }
  // The outputs are what they should be, not merely equal.
  const f = decodeFrame(outputs[0]!.encap);
  assert.deepEqual(f.checksumErrors, []);
  assert.equal(findLayer(f, 'ipv4', 0)!.repr.src, '198.51.100.1');
  assert.equal(findLayer(f, 'ipv4', 0)!.repr.dst, '198.51.100.200');
  assert.deepEqual(findLayer(f, 'tcp')!.repr.options.filter((o) => o.kind === 'mss'), [{ kind: 'mss', value: config.tenants.acme!.tunnels.gre1!.mtu - 40 }]);
  assert.deepEqual(outputs[0]!.decap.subarray(14), Buffer.from(fromCustomer.subarray(14 + 24)));
  assert.deepEqual(outputs[1]!.encap, outputs[0]!.encap, 'encapsulation differs between servers');
  assert.deepEqual(outputs[1]!.decap, outputs[0]!.decap, 'decapsulation differs between servers');
});
