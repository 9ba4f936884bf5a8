/**
 * Reads struct layouts from a compiled BPF object's BTF (`bpftool -j btf dump file`) and compares
 * them with the TypeScript layouts in layout.ts, field by field.
 */
import { err, ok, type Result } from '../../lib/result.ts';
import { run } from '../exec.ts';
import { fieldSize, type StructSpec } from './layout.ts';

interface BtfType {
  id: number;
  kind: string;
  name?: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: Array<{ name: string; type_id: number; bits_offset: number }>;
}

/** A struct as BTF describes it: size and, per member, byte offset and byte size. */
export interface BtfStruct {
  readonly name: string;
  readonly size: number;
  readonly members: ReadonlyArray<{ name: string; offset: number; size: number }>;
}

/** Loads every named struct of an object file's BTF. */
export async function readBtfStructs(object: string): Promise<Result<Map<string, BtfStruct>, string>> {
  const res = await run('bpftool', ['-j', 'btf', 'dump', 'file', object]);
  if (!res.ok) return err(res.error.message);
  const types = (JSON.parse(res.value.stdout) as { types: BtfType[] }).types;
  const byId = new Map(types.map((t) => [t.id, t]));
  const sizeOf = (id: number): number => {
    for (let t = byId.get(id), hops = 0; t && hops < 32; hops++) {
      if (t.kind === 'ARRAY') return (t.nr_elems ?? 0) * sizeOf(t.type_id ?? 0);
      if (t.size !== undefined) return t.size;
      t = byId.get(t.type_id ?? -1);
    }
    return -1;
  };
  const out = new Map<string, BtfStruct>();
  for (const t of types) {
    if (t.kind !== 'STRUCT' || !t.name) continue;
    out.set(t.name, {
      name: t.name,
      size: t.size ?? -1,
      members: (t.members ?? []).map((m) => ({ name: m.name, offset: m.bits_offset / 8, size: sizeOf(m.type_id) })),
    });
  }
  return ok(out);
}

/** Every difference between a TypeScript layout and the BTF struct of the same name, as messages. */
export function compareLayout(spec: StructSpec, btf: BtfStruct | undefined): string[] {
  if (!btf) return [`struct ${spec.name}: not in the object's BTF`];
  const issues: string[] = [];
  if (btf.size !== spec.size) issues.push(`struct ${spec.name}: size ${spec.size} in TypeScript, ${btf.size} in BTF`);
  if (btf.members.length !== spec.fields.length)
    issues.push(`struct ${spec.name}: ${spec.fields.length} fields in TypeScript, ${btf.members.length} in BTF`);
  for (const f of spec.fields) {
    const m = btf.members.find((x) => x.name === f.name);
    if (!m) issues.push(`struct ${spec.name}.${f.name}: not in BTF`);
    else if (m.offset !== f.offset) issues.push(`struct ${spec.name}.${f.name}: offset ${f.offset} in TypeScript, ${m.offset} in BTF`);
    else if (m.size !== fieldSize(f.kind)) issues.push(`struct ${spec.name}.${f.name}: size ${fieldSize(f.kind)} in TypeScript, ${m.size} in BTF`);
  }
  return issues;
}
