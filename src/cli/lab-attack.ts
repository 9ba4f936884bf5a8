/**
 * `anyedge lab attack syn|udp [--seconds 10 --pps 10000 --from EYEBALL --legit EYEBALL
 * --syn-mitigation rate-limit|xdp|synproxy --keep-rule --json]`: a bounded hping3 flood from one
 * eyeball of a running lab against Acme's 203.0.113.100, with the mitigation installed through
 * the REST API, while another eyeball keeps a connection open and opens new ones
 * (src/lab/attack.ts). Exit 0 when every goal was met
 * (≥ 99 % of new connections, the long connection alive, ≥ 90 % of the flood stopped in XDP),
 * 1 when not or when it could not run, 2 when a flag is wrong.
 */
import type { Io } from './io.ts';
import { EXIT_INVALID, EXIT_OK, EXIT_USAGE } from './validate.ts';
import { checkLabId, DEFAULT_LAB_ID } from '../lab/names.ts';
import { formatLabError } from '../lab/errors.ts';
import { DEFAULT_RUN_DIR } from '../lab/state.ts';
import { FLOOD_KINDS, type FloodKind } from '../lab/attack-flood.ts';
import { labAttack } from '../lab/attack.ts';
import { SYN_MITIGATIONS, type SynMitigation } from '../lab/attack-mitigation.ts';
import { SYN_FLOOD_RECOMMENDED } from '../model/synflood.ts';
import { formatAttack } from '../lab/attack-report.ts';

/** Flags of `lab attack`. */
export interface AttackFlags {
  readonly id?: string;
  readonly runDir?: string;
  readonly seconds?: string;
  readonly pps?: string;
  readonly from?: string;
  readonly legit?: string;
  readonly synMitigation?: string;
  readonly keepRule?: boolean;
  readonly json?: boolean;
}

/**
 * How a SYN flood is mitigated unless --syn-mitigation says otherwise: the tenant's SYN-flood
 * protection in XDP (cookie SYN-ACKs from the uplink; SYN_FLOOD_RECOMMENDED, bench/RESULTS.md).
 * Steering keeps each protected flow, both directions, on one server of the DC, so it holds
 * with any number of servers per DC (lab/attack.linux.test.ts: 2 × 2 lab, ≥ 99 %).
 */
export const DEFAULT_SYN_MITIGATION: SynMitigation = SYN_FLOOD_RECOMMENDED;

/** Defaults: 10 s at 10,000 pps, about what hping3 reaches on the lab's two cores. */
export const ATTACK_DEFAULTS = { seconds: 10, pps: 10_000 } as const;

function int(flag: string, text: string | undefined, dflt: number, io: Io): number | null {
  if (text === undefined) return dflt;
  if (!/^\d+$/.test(text)) {
    io.err(`--${flag} ${text}: give a whole number\n`);
    return null;
  }
  return Number(text);
}

/** `lab attack KIND`. Progress goes to stderr, the report to stdout. */
export async function runLabAttack(kind: string, o: AttackFlags, io: Io): Promise<number> {
  if (!(FLOOD_KINDS as readonly string[]).includes(kind)) {
    io.err(`lab attack: ${JSON.stringify(kind)}: use ${FLOOD_KINDS.join(' or ')}\n`);
    return EXIT_USAGE;
  }
  const id = checkLabId(o.id ?? DEFAULT_LAB_ID);
  if (!id.ok) {
    io.err(`--${formatLabError(id.error)}\n`);
    return EXIT_USAGE;
  }
  const seconds = int('seconds', o.seconds, ATTACK_DEFAULTS.seconds, io);
  const pps = int('pps', o.pps, ATTACK_DEFAULTS.pps, io);
  if (seconds === null || pps === null) return EXIT_USAGE;
  const syn = o.synMitigation ?? DEFAULT_SYN_MITIGATION;
  if (!(SYN_MITIGATIONS as readonly string[]).includes(syn)) {
    io.err(`--syn-mitigation ${syn}: use ${SYN_MITIGATIONS.join(', ')}\n`);
    return EXIT_USAGE;
  }
  const r = await labAttack({
    id: id.value,
    runDir: o.runDir ?? DEFAULT_RUN_DIR,
    kind: kind as FloodKind,
    seconds,
    pps,
    ...(o.from !== undefined ? { from: o.from } : {}),
    ...(o.legit !== undefined ? { legit: o.legit } : {}),
    syn: syn as SynMitigation,
    keepRule: o.keepRule === true,
    log: (l) => io.err(`${l}\n`),
  });
  if (!r.ok) {
    io.err(`lab attack: ${formatLabError(r.error)}\n`);
    return r.error.code === 'invalid' ? EXIT_USAGE : EXIT_INVALID;
  }
  io.out(o.json ? `${JSON.stringify(r.value, null, 2)}\n` : formatAttack(r.value));
  return r.value.verdict.ok ? EXIT_OK : EXIT_INVALID;
}
