/**
 * BGP sessions of the lab's BIRD instances, read with `birdc -s <socket> show protocols` (each
 * instance has its own control socket under the lab's directory).
 */
import { join } from 'node:path';
import { err, ok, type Result } from '../lib/result.ts';
import { run } from '../kernel/exec.ts';
import type { LabError } from './errors.ts';

/** One protocol line of `show protocols`. */
export interface BirdProtocol {
  readonly name: string;
  readonly proto: string;
  readonly state: string;
  /** The rest of the line: for BGP `Established`, `Active`, `Connect`, … with details. */
  readonly info: string;
}

/** A BGP session of a router. */
export interface BgpSession {
  readonly router: string;
  readonly neighbor: string;
  readonly established: boolean;
  readonly info: string;
}

/** The control socket of a router's BIRD. */
export function birdSocket(dir: string, node: string): string {
  return join(dir, 'bird', `${node}.ctl`);
}

/** The configuration file of a router's BIRD. */
export function birdConfigPath(dir: string, node: string): string {
  return join(dir, 'bird', `${node}.conf`);
}

/** Parses `birdc show protocols` output (header and banner lines are skipped). */
export function parseProtocols(text: string): BirdProtocol[] {
  const out: BirdProtocol[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim().split(/\s+/);
    if (t.length < 4 || t[0] === 'BIRD' || t[0] === 'Name') continue;
    // Name Proto Table State Since… Info…: "Since" is one token (a time or a date) by default.
    out.push({ name: t[0] as string, proto: t[1] as string, state: t[3] as string, info: t.slice(5).join(' ') });
  }
  return out;
}

/** The BGP sessions of one router's BIRD. */
export async function bgpSessions(dir: string, router: string): Promise<Result<BgpSession[], LabError>> {
  const r = await run('birdc', ['-s', birdSocket(dir, router), 'show', 'protocols'], { timeoutMs: 5000 });
  if (!r.ok) return err({ code: 'failed', path: `bird/${router}`, message: `birdc show protocols: ${r.error.message}`, cause: r.error });
  return ok(
    parseProtocols(r.value.stdout)
      .filter((p) => p.proto === 'BGP')
      .map((p) => ({ router, neighbor: p.name, established: p.state === 'up' && p.info.startsWith('Established'), info: p.info })),
  );
}
