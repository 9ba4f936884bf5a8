/**
 * Small helpers for writing issue messages: showing untrusted input safely and suggesting the
 * nearest known word. Messages end up on terminals and in API responses, so input is never
 * echoed raw.
 */

/**
 * Shows an untrusted value inside a message: JSON-quoted (so control characters and quotes are
 * visible as escapes and cannot drive a terminal) and cut to 40 characters.
 */
export function show(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value);
  else if (value === undefined) text = 'nothing';
  else if (typeof value === 'bigint') text = value.toString();
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  return text.length > 40 ? text.slice(0, 37) + '…' : text;
}

/** What kind of value `value` is, as a reader would say it: `a list`, `the number 5`. */
export function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  if (typeof value === 'string') return `the text ${show(value)}`;
  if (typeof value === 'number') return `the number ${show(value)}`;
  if (typeof value === 'boolean') return `the boolean ${String(value)}`;
  return typeof value;
}

/**
 * Edit distance counting a swap of two neighbouring letters as one edit (optimal string
 * alignment), since "tpc" for "tcp" is the most common typo. Small inputs only (names, keywords).
 */
function distance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

/**
 * The candidate closest to `word` when it is close enough to be a likely typo (at most a third
 * of the word's length, at least 1 edit), else undefined. Case is ignored.
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  if (word.length > 64) return undefined;
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(w, c.toLowerCase());
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  const limit = Math.max(1, Math.floor(w.length / 3));
  if (bestD <= limit) return best;
  // A word cut short ("drain" for "draining") is a likely slip too, once it says enough.
  if (w.length >= 3) for (const c of candidates) if (c.toLowerCase().startsWith(w)) return c;
  return undefined;
}

/** `; did you mean "tcp"?` or empty: appended to a message when a near candidate exists. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const c = closest(word, candidates);
  return c === undefined ? '' : `; did you mean ${JSON.stringify(c)}?`;
}

/** `1 route`, `2 routes`. */
export function plural(n: number, one: string, many = one + 's'): string {
  return `${n} ${n === 1 ? one : many}`;
}
