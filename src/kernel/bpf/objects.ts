/** Paths of the compiled BPF objects (built by `npm run build:bpf` into bpf/out/). */
import { existsSync } from 'node:fs';

const OUT = new URL('../../../bpf/out/', import.meta.url).pathname;

/** The compiled objects by name. */
export const BPF_OBJECTS = {
  xdpEdge: `${OUT}xdp_edge.o`,
  tcGre: `${OUT}tc_gre.o`,
} as const;

/** Objects that are not built yet, so callers can say "run npm run build:bpf" instead of failing obscurely. */
export function missingObjects(): string[] {
  return Object.values(BPF_OBJECTS).filter((p) => !existsSync(p));
}
