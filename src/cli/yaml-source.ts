/**
 * A YAML file kept together with its syntax tree, so that an issue found in the decoded value
 * (an object path plus a field path) can be shown at the line and column where it is written.
 * Shared by every command that reads a declarative file.
 */
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node } from 'yaml';
import type { Result } from '../lib/result.ts';
import { ok, err } from '../lib/result.ts';
import type { Issue } from '../model/issue.ts';
import { splitDocPath } from '../model/document.ts';

/** A 1-based line and column. */
export interface Position {
  readonly line: number;
  readonly col: number;
}

/** A YAML syntax error at a position. */
export interface SyntaxProblem {
  readonly at: Position;
  readonly message: string;
}

/** A parsed YAML file. */
export interface YamlSource {
  /** The decoded value (plain objects, arrays and scalars). */
  readonly value: unknown;
  /** Issues of the tree itself: keys defined twice in one map. */
  readonly issues: readonly Issue[];
  /**
   * Where the node at `path` is written; when it does not exist (a missing field), where its
   * nearest existing parent is. `atKey` prefers the key of a map entry over its value, for
   * issues about the key itself (unknown field, invalid id).
   */
  locate(path: readonly (string | number)[], atKey?: boolean): Position;
}

/** Issue codes that are about the map key an object or field is written under, not its value. */
const KEY_CODES = new Set(['invalid_id', 'not_canonical', 'invalid_ip', 'unknown_key']);

/** Whether an issue is about a map key (so `locate` should point at the key). */
export function isKeyIssue(issue: Issue): boolean {
  // An unknown or repeated field is its key, wherever it stands; the other codes are about a key
  // only when they name the object itself (an id or an egress address written as a map key).
  return issue.code === 'unknown_field' || issue.code === 'duplicate_key' || (issue.field.length === 0 && KEY_CODES.has(issue.code));
}

/** The message of a yaml error without the position and code frame the library appends. */
function firstLine(message: string): string {
  return (message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
}

function keyText(key: unknown): string | undefined {
  return isScalar(key) ? String(key.value) : undefined;
}

/**
 * Parses YAML text. Syntax errors (including several documents in one file) fail with every
 * error's position; duplicate keys do not, because they are configuration mistakes (two servers
 * with one id) and are reported as issues along with the others.
 */
export function parseYaml(text: string): Result<YamlSource, SyntaxProblem[]> {
  const lines = new LineCounter();
  // uniqueKeys off: the library would report a duplicate as a syntax error; we report it as a
  // config issue at its path instead (see duplicateKeys).
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: true });
  const pos = (offset: number): Position => {
    const p = lines.linePos(offset);
    return { line: p.line, col: p.col };
  };
  if (doc.errors.length)
    return err(doc.errors.map((e) => ({ at: e.linePos?.[0] ? { line: e.linePos[0].line, col: e.linePos[0].col } : pos(e.pos[0]), message: firstLine(e.message) })));

  const resolve = (node: unknown): unknown => (isAlias(node) ? node.resolve(doc as Document) : node);
  const start = (node: unknown, fallback: Position): Position => {
    const range = (node as Node | null)?.range;
    return range ? pos(range[0]) : fallback;
  };

  const locate = (path: readonly (string | number)[], atKey = false): Position => {
    let node: unknown = resolve(doc.contents);
    let best = start(node, { line: 1, col: 1 });
    for (const [i, seg] of path.entries()) {
      const last = i === path.length - 1;
      if (isMap(node)) {
        // The last entry with this key: it is the one the decoded value holds.
        const pair = node.items.findLast((p) => keyText(p.key) === String(seg));
        if (!pair) break;
        const value = resolve(pair.value);
        const keyPos = start(pair.key, best);
        // A scalar is shown at its value; a collection at its key, where the reader's eye is.
        best = (last && atKey) || !isScalar(value) ? keyPos : start(value, keyPos);
        node = value;
      } else if (isSeq(node)) {
        const item = typeof seg === 'number' || /^\d+$/.test(seg) ? node.items[Number(seg)] : undefined;
        if (item === undefined) break;
        best = start(item, best);
        node = resolve(item);
      } else break;
    }
    return best;
  };

  const issues: Issue[] = [];
  duplicateKeys(doc.contents, [], issues, pos, resolve);
  return ok({ value: doc.toJS({ maxAliasCount: 1000 }) as unknown, issues, locate });
}

/** Reports every key defined more than once in one map, at its path, naming the first line. */
function duplicateKeys(
  node: unknown,
  path: (string | number)[],
  out: Issue[],
  pos: (offset: number) => Position,
  resolve: (n: unknown) => unknown,
): void {
  if (isMap(node)) {
    const first = new Map<string, number>();
    for (const pair of node.items) {
      const k = keyText(pair.key);
      if (k === undefined) continue;
      const line = pair.key && (pair.key as Node).range ? pos((pair.key as Node).range![0]).line : 0;
      const seen = first.get(k);
      if (seen !== undefined)
        out.push({
          code: 'duplicate_key',
          ...splitDocPath([...path, k]),
          message: `${JSON.stringify(k)} is defined twice in this map (first at line ${seen}); ids and fields must be unique where they stand — rename or remove one`,
        });
      else first.set(k, line);
      duplicateKeys(pair.value, [...path, k], out, pos, resolve);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => duplicateKeys(item, [...path, i], out, pos, resolve));
  }
}
