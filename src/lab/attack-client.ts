/**
 * The legitimate client of `lab attack`: one short-lived Node process in an eyeball's namespace
 * that, for the whole attack,
 * - keeps ONE TCP connection to the echo service open and sends a numbered line through it at a
 *   steady pace, checking each comes back (the long connection must survive the flood), and
 * - opens NEW connections at a steady pace, each sending one payload and expecting it echoed
 *   before its timeout (new connections must still get through the SYN path).
 * It prints one JSON result (LegitResult) when the time is up and the last attempts finished.
 */
import { runJsonScript } from './ns-script.ts';

/** Options of {@link runLegitClient}. */
export interface LegitOptions {
  /** The eyeball's full netns name; null runs it in this process's namespace (loopback tests). */
  readonly ns: string | null;
  readonly host: string;
  readonly port: number;
  /** How long to keep going. */
  readonly seconds: number;
  /** A new connection every this many ms. */
  readonly newEveryMs: number;
  /** A line through the long connection every this many ms. */
  readonly lineEveryMs: number;
  /** A new connection that has not echoed by then failed (covers one SYN retransmission at 1 s). */
  readonly timeoutMs: number;
}

/** What the legitimate client saw. */
export interface LegitResult {
  readonly short: {
    readonly attempted: number;
    readonly echoed: number;
    /** Failed attempts by outcome (timeout, refused, reset, …). */
    readonly failures: Readonly<Record<string, number>>;
    /** Milliseconds from connect() to the echo, percentiles over the echoed ones. */
    readonly p50Ms: number;
    readonly p99Ms: number;
    readonly maxMs: number;
  };
  readonly long: {
    /** Whether it connected at all. */
    readonly connected: boolean;
    readonly sent: number;
    readonly echoed: number;
    /** Still open, unbroken, at the end (no error, no close from the other side). */
    readonly survived: boolean;
    /** Longest wait for one line's echo. */
    readonly maxRttMs: number;
    /** Why it ended early, if it did. */
    readonly error?: string;
  };
  readonly seconds: number;
}

// Runs inside the namespace: argv[1] is the JSON of {host, port, seconds, newEveryMs, lineEveryMs, timeoutMs}.
const CLIENT = `
const net = require('net');
const o = JSON.parse(process.argv[1]);
const t0 = Date.now();
const short = { attempted: 0, echoed: 0, failures: {}, ms: [] };
const pending = new Set();
const one = (i) => new Promise((done) => {
  const payload = 'new #' + i;
  const s0 = Date.now();
  let data = '', finished = false;
  const s = net.connect({ host: o.host, port: o.port });
  const end = (outcome) => {
    if (finished) return; finished = true; clearTimeout(timer); s.destroy();
    if (outcome === 'echoed') { short.echoed++; short.ms.push(Date.now() - s0); }
    else short.failures[outcome] = (short.failures[outcome] || 0) + 1;
    done();
  };
  const timer = setTimeout(() => end('timeout'), o.timeoutMs);
  s.on('connect', () => s.write(payload));
  s.on('data', (b) => { data += b; if (data === payload) end('echoed'); else if (data.length >= payload.length) end('wrong-reply'); });
  s.on('close', () => end(data === payload ? 'echoed' : 'closed'));
  s.on('error', (e) => end(e.code === 'ECONNREFUSED' ? 'refused' : e.code === 'ECONNRESET' ? 'reset' : (e.code || 'error')));
});
const long = { connected: false, sent: 0, echoed: 0, survived: false, maxRttMs: 0 };
let ended = false, buf = '';
const sentAt = new Map();
const ls = net.connect({ host: o.host, port: o.port });
ls.setNoDelay(true);
ls.on('connect', () => { long.connected = true; });
ls.on('data', (b) => {
  buf += b;
  let k;
  while ((k = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, k); buf = buf.slice(k + 1);
    const at = sentAt.get(line);
    if (at !== undefined) { long.echoed++; long.maxRttMs = Math.max(long.maxRttMs, Date.now() - at); sentAt.delete(line); }
  }
});
ls.on('error', (e) => { if (!ended) long.error = e.code || e.message; });
ls.on('close', () => { if (!ended) long.error = long.error || 'closed by the other side'; });
let i = 0;
const opener = setInterval(() => {
  if (Date.now() - t0 >= o.seconds * 1000) return;
  short.attempted++;
  const p = one(++i); pending.add(p); p.then(() => pending.delete(p));
}, o.newEveryMs);
let n = 0;
const liner = setInterval(() => {
  if (!long.connected || long.error || Date.now() - t0 >= o.seconds * 1000) return;
  const line = 'long line ' + (++n);
  sentAt.set(line, Date.now()); long.sent++;
  ls.write(line + '\\n');
}, o.lineEveryMs);
setTimeout(async () => {
  clearInterval(opener); clearInterval(liner);
  await Promise.all([...pending]);
  // The last lines get the same time as a new connection to come back.
  const until = Date.now() + o.timeoutMs;
  while (sentAt.size > 0 && !long.error && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  long.survived = long.connected && !long.error && sentAt.size === 0;
  ended = true; ls.destroy();
  const ms = short.ms.sort((a, b) => a - b);
  const pct = (q) => ms.length ? ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] : 0;
  const { ms: _ms, ...rest } = short;
  process.stdout.write(JSON.stringify({ short: { ...rest, p50Ms: pct(0.5), p99Ms: pct(0.99), maxMs: ms.length ? ms[ms.length - 1] : 0 }, long, seconds: (Date.now() - t0) / 1000 }));
}, o.seconds * 1000);
`;

/** A running legitimate client. */
export interface LegitClient {
  readonly done: Promise<LegitResult>;
}

/** Starts the client; `done` rejects only when the client itself could not run. */
export function runLegitClient(o: LegitOptions): LegitClient {
  const args = JSON.stringify({ host: o.host, port: o.port, seconds: o.seconds, newEveryMs: o.newEveryMs, lineEveryMs: o.lineEveryMs, timeoutMs: o.timeoutMs });
  const done = runJsonScript<LegitResult>({ ns: o.ns, script: CLIENT, args, who: 'legitimate client' });
  return { done };
}

/** Share of new connections that echoed, 0..1 (1 when none was attempted). */
export function successRate(r: LegitResult): number {
  return r.short.attempted === 0 ? 1 : r.short.echoed / r.short.attempted;
}
