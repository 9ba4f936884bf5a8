/**
 * The BPF tunnel maps as the reconciler sees them: list, put, delete, for the anycast endpoints,
 * the encap entries (by tunnel device ifindex) and the decap entries. Two implementations: Linux
 * (EdgeMaps over pinned maps, through bpftool) and an in-memory fake with a canonical `dump()`.
 * Every entry of these maps is ours: the maps themselves are pinned under our directory.
 */
import { ok, type Result } from '../../lib/result.ts';
import type { BpfError } from './bpftool.ts';
import { EdgeMaps, type DecapEntry, type DecapKey, type EncapEntry } from './edge.ts';
import type { EdgePins } from './loader.ts';

/** Map operations the reconciler needs. Deleting an absent entry is success. */
export interface BpfMapsApi {
  listEndpoints(): Promise<Result<string[], BpfError>>;
  putEndpoint(ip: string): Promise<Result<void, BpfError>>;
  deleteEndpoint(ip: string): Promise<Result<void, BpfError>>;
  listEncap(): Promise<Result<Map<number, EncapEntry>, BpfError>>;
  putEncap(ifindex: number, e: EncapEntry): Promise<Result<void, BpfError>>;
  deleteEncap(ifindex: number): Promise<Result<void, BpfError>>;
  listDecap(): Promise<Result<Array<{ key: DecapKey; value: DecapEntry }>, BpfError>>;
  putDecap(k: DecapKey, e: DecapEntry): Promise<Result<void, BpfError>>;
  deleteDecap(k: DecapKey): Promise<Result<void, BpfError>>;
}

/** The fake, plus its canonical text. */
export interface FakeBpfMaps extends BpfMapsApi {
  dump(): string;
}

/** Canonical text of a decap key: `remote local key|-`. */
export function decapKeyText(k: DecapKey): string {
  return `${k.remote} ${k.local} ${k.key ?? '-'}`;
}

/** Canonical, order-independent text of an encap entry. */
export function encapText(e: EncapEntry): string {
  return `local ${e.local} remote ${e.remote} key ${e.key ?? '-'} out ${e.outIfindex} mtu ${e.mtu} ttl ${e.ttl} src ${e.srcMac} dst ${e.dstMac} stats ${e.statsIdx}`;
}

/** Canonical text of a decap entry. */
export function decapText(e: DecapEntry): string {
  return `ifindex ${e.ifindex} src ${e.srcMac} dst ${e.dstMac} stats ${e.statsIdx}`;
}

const absent = (r: Result<void, BpfError>): Result<void, BpfError> =>
  // bpftool says "delete failed: No such file or directory" for a missing key.
  !r.ok && /No such file or directory|ENOENT/i.test(r.error.message) ? ok(undefined) : r;

/** The Linux implementation over one loaded edge's pinned maps. */
export function linuxBpfMaps(pins: Pick<EdgePins, 'maps'>): BpfMapsApi {
  const m = new EdgeMaps(pins);
  return {
    listEndpoints: () => m.listEndpoints(),
    putEndpoint: (ip) => m.putEndpoint(ip),
    deleteEndpoint: async (ip) => absent(await m.deleteEndpoint(ip)),
    listEncap: () => m.listEncap(),
    putEncap: (i, e) => m.putEncap(i, e),
    deleteEncap: async (i) => absent(await m.deleteEncap(i)),
    listDecap: () => m.listDecap(),
    putDecap: (k, e) => m.putDecap(k, e),
    deleteDecap: async (k) => absent(await m.deleteDecap(k)),
  };
}

/** An in-memory fake. */
export function fakeBpfMaps(): FakeBpfMaps {
  const endpoints = new Set<string>();
  const encap = new Map<number, EncapEntry>();
  const decap = new Map<string, { key: DecapKey; value: DecapEntry }>();
  const done = async (): Promise<Result<void, BpfError>> => ok(undefined);
  return {
    listEndpoints: async () => ok([...endpoints].sort()),
    putEndpoint: (ip) => (endpoints.add(ip), done()),
    deleteEndpoint: (ip) => (endpoints.delete(ip), done()),
    listEncap: async () => ok(new Map(encap)),
    putEncap: (i, e) => (encap.set(i, { ...e }), done()),
    deleteEncap: (i) => (encap.delete(i), done()),
    listDecap: async () => ok([...decap.values()].map((d) => ({ key: { ...d.key }, value: { ...d.value } }))),
    putDecap: (k, e) => (decap.set(decapKeyText(k), { key: { ...k }, value: { ...e } }), done()),
    deleteDecap: (k) => (decap.delete(decapKeyText(k)), done()),
    dump() {
      const lines = [
        ...[...endpoints].sort().map((e) => `bpf gre_endpoints ${e}`),
        ...[...encap.entries()].sort(([a], [b]) => a - b).map(([i, e]) => `bpf gre_encap ${i}: ${encapText(e)}`),
        ...[...decap.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, d]) => `bpf gre_decap ${k}: ${decapText(d.value)}`),
      ];
      return lines.join('\n') + (lines.length ? '\n' : '');
    },
  };
}
