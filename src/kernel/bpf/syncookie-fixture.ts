/**
 * The SYN-flood path built by hand in namespaces, as a server runs it for one protected tenant:
 *
 *   client(c) eth0 ──── up0 server(s) t0 ──── u0 tenant(t) b0 ──── eth0 host(h) 203.0.113.100
 *   192.0.2.10/29        192.0.2.9/29 (xdp_edge)    (SYN-flood table)        TCP echo on PORT
 *   flood source 192.0.2.12 (spoofed by hping3 on c, answered by nobody)
 *
 * Shared by syncookie.linux.test.ts and bench/synflood.bench.ts. The protection mode decides what
 * answers the flood: `xdp` puts the tenant prefix into xdp_edge's syn_v4 map and the SYN-flood
 * table into the tenant namespace (for the ACK leg), `synproxy` only the table, `off` nothing.
 * The host namespace counts every SYN it receives per source in an nft table, so a test can show
 * the host never saw the flood.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';
import type { NetLab } from '../../testkit/netlab.ts';
import type { SynFloodProtection } from '../../model/synflood.ts';
import { compileSynproxy, synCounterNames } from '../../compile/firewall/synproxy.ts';
import { stringifyNft } from '../../compile/firewall/compile.ts';
import { match, namedCounter, payload } from '../../compile/firewall/nft.ts';
import { loadEdge, type EdgePins } from './loader.ts';
import { SynCookieMaps, type SynCounters } from './syncookie.ts';

export const CLIENT = '192.0.2.10';
export const FLOOD_SOURCE = '192.0.2.12';
export const HOST = '203.0.113.100';
export const PREFIX = '203.0.113.0/25';
export const PORT = 8021;
export const TENANT_IDX = 1;
const SYN_TABLE = 'aesyn';
const OBS_TABLE = 'aesynobs';
const PEER = fileURLToPath(new URL('./syncookie-peer.mjs', import.meta.url));

/** The built lab: the loaded edge (server side) and its SYN-flood maps. */
export interface SynLab {
  readonly lab: NetLab;
  readonly mode: SynFloodProtection;
  readonly edge: EdgePins;
  readonly maps: SynCookieMaps;
}

// `ip netns exec` remounts /sys and hides the bpffs pins; nsenter switches only the network.
function nsenter(lab: NetLab, ns: string, ...argv: string[]): Promise<string> {
  return lab.sh('nsenter', [`--net=/run/netns/${lab.ns(ns)}`, ...argv]);
}

/** Builds the namespaces, loads the edge as `<prefix>e` (the caller unloads it) and applies `mode`. */
export async function buildSynLab(lab: NetLab, mode: SynFloodProtection): Promise<SynLab> {
  for (const n of ['c', 's', 't', 'h']) await lab.addNs(n);
  await lab.veth('c', 'eth0', 's', 'up0');
  await lab.veth('s', 't0', 't', 'u0');
  await lab.veth('t', 'b0', 'h', 'eth0');
  await lab.ip('c', 'addr', 'add', `${CLIENT}/29`, 'dev', 'eth0');
  await lab.ip('c', 'route', 'add', 'default', 'via', '192.0.2.9');
  await lab.ip('s', 'addr', 'add', '192.0.2.9/29', 'dev', 'up0');
  await lab.ip('s', 'addr', 'add', '192.0.2.17/30', 'dev', 't0');
  await lab.ip('s', 'route', 'add', PREFIX, 'via', '192.0.2.18');
  await lab.ip('t', 'addr', 'add', '192.0.2.18/30', 'dev', 'u0');
  await lab.ip('t', 'route', 'add', 'default', 'via', '192.0.2.17');
  await lab.ip('t', 'addr', 'add', '203.0.113.1/25', 'dev', 'b0');
  await lab.ip('h', 'addr', 'add', `${HOST}/25`, 'dev', 'eth0');
  await lab.ip('h', 'route', 'add', 'default', 'via', '203.0.113.1');
  // The client does not route: SYN-ACKs to the spoofed flood source end at its interface.
  await lab.exec('c', 'sysctl', ['-qw', 'net.ipv4.ip_forward=0']);
  // XDP sees raw bytes: end hosts compute checksums in software, as a NIC would have before the
  // packet crossed the Internet (veth would otherwise hand on CHECKSUM_PARTIAL packets).
  for (const ns of ['c', 'h']) await lab.exec(ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);

  const loaded = await loadEdge(`${lab.prefix}e`);
  if (!loaded.ok) throw new Error(`${loaded.error.op}: ${loaded.error.message}`);
  const edge = loaded.value;
  const maps = new SynCookieMaps(edge);
  await nsenter(lab, 's', 'ip', 'link', 'set', 'dev', 'up0', 'xdpdrv', 'pinned', edge.progs.xdpEdge);
  // XDP_TX on a veth hands the frame to the peer, which takes it only when it runs XDP itself.
  await nsenter(lab, 'c', 'ip', 'link', 'set', 'dev', 'eth0', 'xdpdrv', 'pinned', edge.progs.xdpPass);

  if (mode !== 'off') {
    const table = compileSynproxy({ protection: mode, mss: 1460, wscale: 7 }, { uplink: 'u0', prefixes: [PREFIX], table: SYN_TABLE });
    await nftApply(lab, 't', stringifyNft(table));
  }
  if (mode === 'xdp') {
    const r = await maps.protect(PREFIX, { mss: 1460, wscale: 7, tenantIdx: TENANT_IDX });
    if (!r.ok) throw new Error(`${r.error.op}: ${r.error.message}`);
  }
  // The host's view: SYNs (without ACK) per source, counted before anything else.
  const syn = match({ '&': [payload('tcp', 'flags'), ['syn', 'ack']] }, 'syn');
  const obs = {
    nftables: [
      { metainfo: { json_schema_version: 1 } },
      { add: { table: { family: 'inet', name: OBS_TABLE } } },
      { add: { counter: { family: 'inet', table: OBS_TABLE, name: 'flood_syn' } } },
      { add: { counter: { family: 'inet', table: OBS_TABLE, name: 'client_syn' } } },
      { add: { chain: { family: 'inet', table: OBS_TABLE, name: 'in', type: 'filter', hook: 'prerouting', prio: -400, policy: 'accept' } } },
      { add: { rule: { family: 'inet', table: OBS_TABLE, chain: 'in', expr: [match(payload('ip', 'saddr'), FLOOD_SOURCE), syn, namedCounter('flood_syn')] } } },
      { add: { rule: { family: 'inet', table: OBS_TABLE, chain: 'in', expr: [match(payload('ip', 'saddr'), CLIENT), syn, namedCounter('client_syn')] } } },
    ],
  };
  await nftApply(lab, 'h', JSON.stringify(obs));
  return { lab, mode, edge, maps };
}

/** `nft -j -f FILE` in a namespace (not `-f -`: nft cannot open node's socket stdin; see kernel/nft.ts). */
async function nftApply(lab: NetLab, ns: string, batch: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-synlab-'));
  try {
    const file = join(dir, 'batch.json');
    await writeFile(file, batch, { mode: 0o600 });
    await lab.exec(ns, 'nft', ['-j', '-f', file]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Packets of a named nft counter in a namespace of the lab. */
export async function nftCounter(lab: NetLab, ns: string, table: string, name: string): Promise<number> {
  const out = JSON.parse(await lab.exec(ns, 'nft', ['-j', 'list', 'counter', 'inet', table, name])) as { nftables: Array<{ counter?: { packets: number } }> };
  return out.nftables.find((o) => o.counter)?.counter?.packets ?? 0;
}

/** What the evidence counters say. */
export interface SynEvidence {
  /** SYN-ACKs sent from XDP, and ACKs dropped there (xdp_edge's per-tenant counters). */
  readonly xdp: SynCounters;
  /** Packets the tenant namespace's table untracked (SYNs) and handed to synproxy. */
  readonly notracked: number;
  readonly proxied: number;
  /** SYNs the host received from the flood's source and from the client. */
  readonly hostFloodSyns: number;
  readonly hostClientSyns: number;
}

/** Reads every counter of the lab. */
export async function evidence(s: SynLab): Promise<SynEvidence> {
  const xdp = await s.maps.tenantCounters(TENANT_IDX);
  if (!xdp.ok) throw new Error(`${xdp.error.op}: ${xdp.error.message}`);
  const withTable = s.mode !== 'off';
  return {
    xdp: xdp.value,
    notracked: withTable ? await nftCounter(s.lab, 't', SYN_TABLE, synCounterNames.notrack) : 0,
    proxied: withTable ? await nftCounter(s.lab, 't', SYN_TABLE, synCounterNames.proxied) : 0,
    hostFloodSyns: await nftCounter(s.lab, 'h', OBS_TABLE, 'flood_syn'),
    hostClientSyns: await nftCounter(s.lab, 'h', OBS_TABLE, 'client_syn'),
  };
}

/** The echo backend on the host; resolves once it listens. Killed by `lab.destroy()`. */
export async function startBackend(lab: NetLab): Promise<ChildProcess> {
  const p = lab.spawn('h', process.execPath, [PEER, 'server', String(PORT)]);
  await new Promise<void>((resolve, reject) => {
    const rl = readline.createInterface({ input: p.stdout! });
    rl.once('line', (l) => (l === 'ready' ? resolve() : reject(new Error(`backend said ${l}`))));
    p.once('exit', (code) => reject(new Error(`backend exited with ${code}`)));
  });
  return p;
}

/** What the legitimate client saw. */
export interface ClientReport {
  readonly attempts: number;
  readonly ok: number;
  readonly failed: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly latenciesMs: readonly number[];
  readonly longLived: { readonly opened: boolean; readonly echoAtStart: boolean; readonly echoAtEnd: boolean; readonly closedEarly: boolean };
}

/** Runs the legitimate client for `ms`: one connection kept open, a new one every `everyMs`. */
export function runClients(lab: NetLab, ms: number, everyMs: number, timeoutMs: number): Promise<ClientReport> {
  const p = lab.spawn('c', process.execPath, [PEER, 'clients', HOST, String(PORT), String(ms), String(everyMs), String(timeoutMs)]);
  let out = '';
  let errText = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (errText += d.toString()));
  return new Promise((resolve, reject) => {
    p.once('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as ClientReport);
      } catch {
        reject(new Error(`client exited with ${code}: ${errText || out}`));
      }
    });
  });
}

/**
 * A bounded hping3 flood of SYNs (or bare ACKs with a random-looking ack number) from the spoofed
 * FLOOD_SOURCE to the host's port: `count` packets, one every `intervalUs` µs (source port
 * incremented per packet). Resolves when hping3 exits.
 */
export function flood(lab: NetLab, count: number, intervalUs: number, kind: 'syn' | 'ack' = 'syn'): Promise<{ code: number | null; ms: number }> {
  const start = Date.now();
  const p = lab.spawn('c', 'hping3', ['-q', kind === 'syn' ? '-S' : '-A', '-p', String(PORT), '-a', FLOOD_SOURCE, '-c', String(count), '-i', `u${intervalUs}`, HOST]);
  p.stdout!.resume();
  p.stderr!.resume();
  return new Promise((resolve) => p.once('exit', (code) => resolve({ code, ms: Date.now() - start })));
}
