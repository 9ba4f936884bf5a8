/**
 * The state file of a running lab (`<run dir>/<prefix>/state.json`): what `lab up` created and
 * every pid it started, written as it goes (a crash half-way still leaves a record for
 * `lab down`), replaced atomically (write, then rename).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { err, ok, type Result } from '../lib/result.ts';
import type { LabError } from './errors.ts';

/** Where labs keep their state, logs, BIRD sockets and store by default. */
export const DEFAULT_RUN_DIR = '/run/anyedge-lab';

const processSchema = z.strictObject({
  role: z.enum(['etcd', 'bird', 'agent', 'echo', 'internet', 'proxy', 'relay']),
  /** The node it serves (`ams`, `ams-s1`, `acme-h`, `inet`), absent for etcd. */
  node: z.string().optional(),
  pid: z.number().int().positive(),
  log: z.string(),
});

/** Schema of state.json. */
export const labStateSchema = z.strictObject({
  version: z.literal(1),
  id: z.string(),
  prefix: z.string(),
  dir: z.string(),
  size: z.strictObject({ dcs: z.number(), servers: z.number(), cities: z.number() }),
  store: z.strictObject({ kind: z.enum(['etcd', 'lmdb']), spec: z.string() }),
  phase: z.enum(['building', 'up', 'failed']),
  startedAt: z.string(),
  /** Seconds `lab up` took, once up. */
  upSeconds: z.number().optional(),
  configRevision: z.number().optional(),
  netns: z.array(z.string()),
  pins: z.array(z.string()),
  processes: z.array(processSchema),
});

/** A lab's state. */
export type LabState = z.output<typeof labStateSchema>;
/** A process of the lab. */
export type LabProcess = z.output<typeof processSchema>;

/** The lab's directory under the run dir. */
export function labDir(runDir: string, prefix: string): string {
  return join(runDir, prefix);
}

/** Path of the state file. */
export function statePath(dir: string): string {
  return join(dir, 'state.json');
}

/** Writes the state (atomically). */
export function writeState(s: LabState): void {
  mkdirSync(s.dir, { recursive: true });
  const tmp = `${statePath(s.dir)}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`);
  renameSync(tmp, statePath(s.dir));
}

/** Reads the state of the lab in `dir`; not_found when there is none. */
export function readState(dir: string): Result<LabState, LabError> {
  let text: string;
  try {
    text = readFileSync(statePath(dir), 'utf8');
  } catch {
    return err({ code: 'not_found', path: statePath(dir), message: 'no lab state here; is the lab up? (anyedge lab up, or give its --id and --run-dir)' });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return err({ code: 'invalid', path: statePath(dir), message: `not JSON (${(e as Error).message}); run anyedge lab down to sweep the lab by its prefix`, cause: e });
  }
  const s = labStateSchema.safeParse(json);
  if (!s.success) return err({ code: 'invalid', path: statePath(dir), message: `${z.prettifyError(s.error)}; run anyedge lab down to sweep the lab by its prefix` });
  return ok(s.data);
}
