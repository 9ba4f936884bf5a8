/**
 * `anyedge lab trace --from EYEBALL --to HOST:PORT [--json]`: one real TCP connection, reported
 * hop by hop (which DC, which server, which rule, through the tunnel and back). Exit 0 when the
 * payload came back, 1 when it did not (the hops say where it stopped) or the lab is not there,
 * 2 for a bad flag.
 */
import type { Io } from './io.ts';
import { EXIT_INVALID, EXIT_OK, EXIT_USAGE } from './validate.ts';
import { checkLabId, DEFAULT_LAB_ID } from '../lab/names.ts';
import { formatLabError } from '../lab/errors.ts';
import { DEFAULT_RUN_DIR } from '../lab/state.ts';
import { formatTrace, labTrace, parseTarget } from '../lab/trace.ts';

/** Flags of `lab trace`. */
export interface TraceFlags {
  readonly id?: string;
  readonly runDir?: string;
  readonly from?: string;
  readonly to?: string;
  readonly json?: boolean;
}

/** `lab trace`. */
export async function runLabTrace(o: TraceFlags, io: Io): Promise<number> {
  const id = checkLabId(o.id ?? DEFAULT_LAB_ID);
  if (!id.ok) {
    io.err(`--${formatLabError(id.error)}\n`);
    return EXIT_USAGE;
  }
  if (!o.from || !o.to) {
    io.err('lab trace: give --from EYEBALL and --to HOST:PORT, e.g. --from lon-e1 --to 203.0.113.100:21\n');
    return EXIT_USAGE;
  }
  const t = parseTarget(o.to);
  if (!t.ok) {
    io.err(`lab trace: --${formatLabError(t.error)}\n`);
    return EXIT_USAGE;
  }
  const r = await labTrace(id.value, o.runDir ?? DEFAULT_RUN_DIR, o.from, o.to);
  if (!r.ok) {
    io.err(`lab trace: ${r.error.path === 'from' || r.error.path === 'to' ? '--' : ''}${formatLabError(r.error)}\n`);
    return r.error.code === 'not_found' && (r.error.path === 'from' || r.error.path === 'to') ? EXIT_USAGE : EXIT_INVALID;
  }
  io.out(o.json ? `${JSON.stringify(r.value, null, 2)}\n` : formatTrace(r.value));
  return r.value.flow.outcome === 'echoed' ? EXIT_OK : EXIT_INVALID;
}
