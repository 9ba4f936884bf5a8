/**
 * A canonical nft-like text rendering of a compiled batch, for `anyedge plan` and for people. It
 * is never sent to the kernel (the JSON is), so it may differ from nft's own listing in small
 * ways; rule lines read like `nft list table` prints them (`ip daddr 203.0.113.100 tcp dport
 * 20-21 counter name "rule_ftp" accept comment "ftp"`). Every string from the batch that is not a
 * plain token is shown JSON-quoted, so a hostile name can not pass for syntax here either.
 */
import { ICMP_TYPES, ICMPV6_TYPES, TCP_FLAGS } from '../../model/match.ts';
import { PROTOCOLS as PROTOCOL_NUMBERS } from '../../model/net.ts';
import type { Json, JsonObject, NftJson } from './nft.ts';
import { isObject } from './nft.ts';

/** What a value is compared with: decides how numbers and strings are spelled. */
type Kind = 'l4proto' | 'tcpflags' | 'ifname' | 'ctstate' | 'icmp' | 'icmpv6' | 'icmpcode' | 'icmpv6code' | 'other';

/** Protocol names by number, for `meta l4proto`. */
const PROTOCOLS = new Map(Object.entries(PROTOCOL_NUMBERS).map(([name, n]) => [n, name]));

/** ICMP and ICMPv6 type names by number, as nft spells them. */
const ICMP_NAMES = {
  icmp: new Map(Object.entries(ICMP_TYPES).map(([name, n]) => [n, name])),
  icmpv6: new Map(Object.entries(ICMPV6_TYPES).map(([name, n]) => [n, name])),
};

const PLAIN = /^(@?[A-Za-z_][A-Za-z0-9_.-]*|[0-9A-Fa-f.:]+)$/;

/**
 * nft's listing spells some values by name where the batch has numbers (`ipv6-icmp`,
 * `net-unreachable`, flag lists); they are brought to one spelling so the text of a listing and
 * of the batch that made it compare equal.
 */
const NAME_VALUES: Partial<Record<Kind, Readonly<Record<string, number>>>> = {
  l4proto: { ...PROTOCOL_NUMBERS, 'ipv6-icmp': 58 },
  icmpcode: { 'net-unreachable': 0, 'host-unreachable': 1, 'prot-unreachable': 2, 'port-unreachable': 3, 'frag-needed': 4, 'net-prohibited': 9, 'host-prohibited': 10, 'admin-prohibited': 13 },
  icmpv6code: { 'no-route': 0, 'admin-prohibited': 1, 'addr-unreachable': 3, 'port-unreachable': 4, 'policy-fail': 5, 'reject-route': 6 },
  tcpflags: Object.fromEntries(TCP_FLAGS.map((f, i) => [f, 1 << i])),
};

function str(s: string, kind: Kind): string {
  const named = NAME_VALUES[kind];
  if (named && Object.hasOwn(named, s)) return num(named[s]!, kind);
  if (kind === 'ifname' || !PLAIN.test(s)) return JSON.stringify(s);
  return s;
}

function num(n: number, kind: Kind): string {
  if (kind === 'l4proto') return PROTOCOLS.get(n) ?? String(n);
  if (kind === 'icmp' || kind === 'icmpv6') return ICMP_NAMES[kind].get(n) ?? String(n);
  if (kind === 'tcpflags') {
    const names = TCP_FLAGS.filter((_, i) => (n & (1 << i)) !== 0);
    return names.length === 0 ? '0x0' : names.length === 1 ? names[0]! : `(${names.join(' | ')})`;
  }
  return String(n);
}

function kindOf(left: Json): Kind {
  if (isObject(left)) {
    const m = left.meta;
    if (isObject(m) && m.key === 'l4proto') return 'l4proto';
    if (isObject(m) && (m.key === 'iifname' || m.key === 'oifname')) return 'ifname';
    const p = left.payload;
    if (isObject(p) && p.protocol === 'tcp' && p.field === 'flags') return 'tcpflags';
    if (isObject(p) && (p.protocol === 'icmp' || p.protocol === 'icmpv6') && p.field === 'type') return p.protocol;
    if (isObject(p) && (p.protocol === 'icmp' || p.protocol === 'icmpv6') && p.field === 'code') return `${p.protocol}code`;
    const ct = left.ct;
    if (isObject(ct) && ct.key === 'state') return 'ctstate';
  }
  return 'other';
}

function raw(v: Json): string {
  return `json(${JSON.stringify(v)})`;
}

/** A value: address, prefix, range, set, concatenation, verdict, or a reference. */
function val(v: Json, kind: Kind = 'other'): string {
  if (typeof v === 'string') return str(v, kind);
  if (typeof v === 'number') return num(v, kind);
  if (Array.isArray(v)) {
    // A flag list (nft's listing of a mask) is one value: the bits or'ed.
    const bits = NAME_VALUES[kind];
    if (kind === 'tcpflags' && bits && v.every((x: Json) => typeof x === 'string' && Object.hasOwn(bits, x)))
      return num(v.reduce((a: number, x: Json) => a | bits[x as string]!, 0), kind);
    return v.map((x: Json) => val(x, kind)).join(',');
  }
  if (!isObject(v)) return raw(v);
  if (isObject(v.prefix) && typeof v.prefix.addr === 'string') return `${v.prefix.addr}/${String(v.prefix.len)}`;
  if (Array.isArray(v.range) && v.range.length === 2) return `${val(v.range[0] as Json, kind)}-${val(v.range[1] as Json, kind)}`;
  if (Array.isArray(v.set)) return `{ ${v.set.map((e: Json) => elem(e, kind)).join(', ')} }`;
  if (Array.isArray(v.concat)) return v.concat.map((e: Json) => val(e, kind)).join(' . ');
  const verdictText = verdict(v);
  if (verdictText !== undefined) return verdictText;
  const l = left(v);
  return l ?? raw(v);
}

/** A set element; a map element is a `[key, data]` pair. */
function elem(e: Json, kind: Kind): string {
  if (Array.isArray(e) && e.length === 2) return `${val(e[0] as Json, kind)} : ${val(e[1] as Json)}`;
  return val(e, kind);
}

/** A verdict statement or value, or undefined when `v` is not one. */
function verdict(v: JsonObject): string | undefined {
  for (const k of ['accept', 'drop', 'continue', 'return']) if (k in v && v[k] === null) return k;
  for (const k of ['jump', 'goto']) {
    const t = v[k];
    if (isObject(t) && typeof t.target === 'string') return `${k} ${str(t.target, 'other')}`;
  }
  return undefined;
}

/** The left side of a match: header field, meta key, ct key, concatenation or bitwise and. */
function left(v: Json): string | undefined {
  if (!isObject(v)) return undefined;
  const p = v.payload;
  if (isObject(p) && typeof p.protocol === 'string' && typeof p.field === 'string') return `${p.protocol} ${p.field}`;
  const m = v.meta;
  if (isObject(m) && typeof m.key === 'string') return m.key === 'iifname' || m.key === 'oifname' ? m.key : `meta ${m.key}`;
  const ct = v.ct;
  if (isObject(ct) && typeof ct.key === 'string') return `ct ${ct.key}`;
  if (Array.isArray(v.concat)) return v.concat.map((e: Json) => left(e) ?? raw(e)).join(' . ');
  const and = v['&'];
  if (Array.isArray(and) && and.length === 2) {
    const l = left(and[0] as Json) ?? raw(and[0] as Json);
    return `${l} & ${val(and[1] as Json, kindOf(and[0] as Json))}`;
  }
  return undefined;
}

/** One statement of a rule. */
function stmt(s: Json): string {
  if (!isObject(s)) return raw(s);
  if (isObject(s.match)) {
    const { op, left: l, right: r } = s.match;
    const lhs = left(l as Json) ?? raw(l as Json);
    const kind = isObject(l) && Array.isArray(l['&']) ? kindOf((l['&'] as Json[])[0] as Json) : kindOf(l as Json);
    const rhs = val(r as Json, kind);
    // nft leaves out == and the flag test "in"; an & needs the explicit == to read right.
    if ((op === '==' && !(isObject(l) && '&' in l)) || op === 'in') return `${lhs} ${rhs}`;
    return `${lhs} ${String(op)} ${rhs}`;
  }
  if ('counter' in s) {
    const c = s.counter;
    if (typeof c === 'string') return `counter name ${JSON.stringify(c)}`;
    if (isObject(c) && typeof c.packets === 'number') return `counter packets ${c.packets} bytes ${String(c.bytes)}`;
    return 'counter';
  }
  if (isObject(s.vmap)) return `${left(s.vmap.key as Json) ?? raw(s.vmap.key as Json)} vmap ${val(s.vmap.data as Json, kindOf(s.vmap.key as Json))}`;
  if (isObject(s.limit)) {
    const l = s.limit;
    const unit = l.rate_unit === 'bytes' ? ' bytes' : '';
    const burst = typeof l.burst === 'number' && l.burst > 0 ? ` burst ${l.burst} ${l.burst_unit === 'bytes' ? 'bytes' : 'packets'}` : '';
    return `limit rate ${l.inv === true ? 'over ' : ''}${String(l.rate)}${unit}/${String(l.per ?? 'second')}${burst}`;
  }
  return verdict(s) ?? raw(s);
}

const OBJECT_KINDS: readonly string[] = ['table', 'chain', 'rule', 'set', 'map', 'counter'];

interface TableView {
  family: string;
  name: string;
  replaced: boolean;
  counters: JsonObject[];
  sets: JsonObject[];
  chains: Map<string, { def: JsonObject; rules: JsonObject[] }>;
  other: string[];
}

function setBlock(kind: 'set' | 'map', s: JsonObject, keyKind: Kind): string[] {
  const type = Array.isArray(s.type) ? s.type.join(' . ') : String(s.type);
  const out = [`\t${kind} ${str(String(s.name), 'other')} {`, `\t\ttype ${type}${kind === 'map' ? ` : ${String(s.map)}` : ''}`];
  if (Array.isArray(s.flags) && s.flags.length) out.push(`\t\tflags ${s.flags.join(',')}`);
  if (Array.isArray(s.elem) && s.elem.length) out.push(`\t\telements = { ${s.elem.map((e: Json) => elem(e, keyKind)).join(', ')} }`);
  out.push('\t}');
  return out;
}

/**
 * Renders a batch as nft-like text: per table, what the batch does to it (replace or add) and the
 * table as it will be, counters, sets, maps and chains with their rules in order. Commands this
 * view has no place for are listed after it as comments.
 */
export function formatNft(json: NftJson): string {
  const tables = new Map<string, TableView>();
  const orphans: string[] = [];
  const view = (family: string, name: string): TableView => {
    const key = `${family} ${name}`;
    let t = tables.get(key);
    if (!t) {
      t = { family, name, replaced: false, counters: [], sets: [], chains: new Map(), other: [] };
      tables.set(key, t);
    }
    return t;
  };
  for (const cmd of json.nftables) {
    if ('metainfo' in cmd) continue;
    const top = Object.keys(cmd)[0] ?? '';
    // A listing (`nft -j list …`) has bare objects; they read as additions, so the kernel's state
    // renders the same way as the batch that made it.
    const listed = OBJECT_KINDS.includes(top);
    const verb = listed ? 'add' : top;
    const body = listed ? cmd : cmd[top];
    const kind = isObject(body) ? (Object.keys(body)[0] ?? '') : '';
    const obj = isObject(body) ? body[kind] : undefined;
    if (!isObject(obj) || typeof obj.family !== 'string') {
      orphans.push(`# ${verb} ${JSON.stringify(body)}`);
      continue;
    }
    const tname = kind === 'table' ? obj.name : obj.table;
    if (typeof tname !== 'string') {
      orphans.push(`# ${verb} ${JSON.stringify(body)}`);
      continue;
    }
    const t = view(obj.family, tname);
    if (verb === 'delete' && kind === 'table') {
      // add + delete + add is the replace idiom; what was collected so far is gone.
      t.replaced = true;
      t.counters = [];
      t.sets = [];
      t.chains = new Map();
      t.other = [];
      continue;
    }
    if (verb !== 'add') {
      t.other.push(`# ${verb} ${kind} ${JSON.stringify(obj)}`);
      continue;
    }
    if (kind === 'table') continue;
    if (kind === 'counter') t.counters.push(obj);
    else if (kind === 'set' || kind === 'map') t.sets.push({ ...obj, kind });
    else if (kind === 'chain') t.chains.set(String(obj.name), { def: obj, rules: t.chains.get(String(obj.name))?.rules ?? [] });
    else if (kind === 'rule') {
      const c = String(obj.chain);
      const entry = t.chains.get(c) ?? { def: { name: c }, rules: [] };
      entry.rules.push(obj);
      t.chains.set(c, entry);
    } else t.other.push(`# add ${kind} ${JSON.stringify(obj)}`);
  }

  const out: string[] = [];
  for (const t of tables.values()) {
    const head = `table ${t.family} ${str(t.name, 'other')}`;
    out.push(t.replaced ? `# replaces ${head} in one transaction (add, delete, recreate)` : `# adds to ${head}`);
    out.push(`${head} {`);
    const blocks: string[][] = [];
    for (const c of t.counters) {
      const values = typeof c.packets === 'number' ? [`\t\tpackets ${c.packets} bytes ${String(c.bytes)}`] : [];
      blocks.push([`\tcounter ${str(String(c.name), 'other')} {`, ...values, '\t}']);
    }
    for (const s of t.sets) {
      const types = Array.isArray(s.type) ? s.type : [s.type];
      const keyKind: Kind = types.includes('ifname') ? 'ifname' : 'other';
      blocks.push(setBlock(s.kind === 'map' ? 'map' : 'set', s, keyKind));
    }
    for (const [name, { def, rules }] of t.chains) {
      const lines = [`\tchain ${str(name, 'other')} {`];
      if (typeof def.hook === 'string') {
        const prio = def.prio === 0 ? 'filter' : String(def.prio);
        lines.push(`\t\ttype ${String(def.type)} hook ${def.hook} priority ${prio}; policy ${String(def.policy ?? 'accept')};`);
      }
      for (const r of rules) {
        const expr = Array.isArray(r.expr) ? r.expr.map((s: Json) => stmt(s)).join(' ') : raw(r.expr as Json);
        lines.push(`\t\t${expr}${typeof r.comment === 'string' ? ` comment ${JSON.stringify(r.comment)}` : ''}`);
      }
      lines.push('\t}');
      blocks.push(lines);
    }
    out.push(blocks.map((b) => b.join('\n')).join('\n\n'));
    out.push('}');
    out.push(...t.other);
  }
  out.push(...orphans);
  return out.join('\n') + '\n';
}
