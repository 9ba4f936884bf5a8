/**
 * Loads anyedge's BPF objects and pins them under one directory of bpffs, with the GRE encap
 * program sharing the XDP object's maps, so one set of maps holds all tunnel state and counters.
 * The pin directory is the ownership mark: removing it frees everything we loaded.
 */
import { mkdir } from 'node:fs/promises';
import { err, ok, type Result } from '../../lib/result.ts';
import { loadAll, unpin, type BpfError } from './bpftool.ts';
import { BPF_OBJECTS, missingObjects } from './objects.ts';

/** The maps of the edge programs, by name. */
export const EDGE_MAPS = ['gre_encap', 'gre_endpoints', 'gre_decap', 'tunnel_stats', 'edge_counters'] as const;
export type EdgeMapName = (typeof EDGE_MAPS)[number];

/** Pinned paths of the loaded programs and maps. */
export interface EdgePins {
  readonly root: string;
  readonly progs: { readonly xdpEdge: string; readonly xdpPass: string; readonly tcGreEncap: string };
  readonly maps: Readonly<Record<EdgeMapName, string>>;
}

/** Where bpffs is mounted on every Linux machine we run on. */
export const BPFFS = '/sys/fs/bpf';

/** Where `loadEdge(name)` pins everything (nothing is checked or loaded). */
export function edgePins(name: string): EdgePins {
  const root = `${BPFFS}/${name}`;
  return {
    root,
    progs: { xdpEdge: `${root}/xdp/xdp_edge`, xdpPass: `${root}/xdp/xdp_pass`, tcGreEncap: `${root}/tc/tc_gre_encap` },
    maps: Object.fromEntries(EDGE_MAPS.map((m) => [m, `${root}/maps/${m}`])) as Record<EdgeMapName, string>,
  };
}

/**
 * Loads xdp_edge.o and tc_gre.o under `${BPFFS}/${name}`. The caller owns the returned pins and
 * frees them with `unloadEdge`. A failure half-way removes what was pinned.
 */
export async function loadEdge(name: string): Promise<Result<EdgePins, BpfError>> {
  const missing = missingObjects();
  if (missing.length) {
    return err({ code: 'bpf_failed', op: 'load edge programs', message: `missing BPF objects ${missing.join(', ')}: run npm run build:bpf` });
  }
  const pins = edgePins(name);
  const root = pins.root;
  try {
    await mkdir(root, { recursive: true });
  } catch (e) {
    return err({ code: 'bpf_failed', op: `mkdir ${root}`, message: `${(e as Error).message}; is bpffs mounted on ${BPFFS}?`, cause: e as Error });
  }
  const xdp = await loadAll(BPF_OBJECTS.xdpEdge, `${root}/xdp`, `${root}/maps`, { type: 'xdp' });
  if (!xdp.ok) {
    await unpin(root);
    return xdp;
  }
  // tc_gre.o declares the same maps; pointing them at the pinned ones makes both programs share
  // tunnel config and counters instead of each getting a private copy.
  const tc = await loadAll(BPF_OBJECTS.tcGre, `${root}/tc`, `${root}/tcmaps`, {
    type: 'tc',
    reuseMaps: EDGE_MAPS.map((m) => ({ name: m, pinned: pins.maps[m] })),
  });
  if (!tc.ok) {
    await unpin(root);
    return tc;
  }
  return ok(pins);
}

/** Unpins everything loaded by `loadEdge`; already gone is success. */
export async function unloadEdge(pins: Pick<EdgePins, 'root'>): Promise<void> {
  await unpin(pins.root);
}
