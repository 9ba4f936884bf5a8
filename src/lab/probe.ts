/**
 * Real TCP flows from a lab node: one short-lived Node process inside the node's namespace opens
 * the flows in parallel (each from its own source port, so an L4 hash may spread them), sends
 * each its payload, half-closes, and reports per flow what came back. The echo services answer
 * with the payload, so `echoed` means the bytes went all the way to the customer's host and back.
 */
import { runJsonScript } from './ns-script.ts';

/** How one flow ended. */
export type FlowOutcome = 'echoed' | 'timeout' | 'refused' | 'reset' | 'unreachable' | 'wrong-reply' | 'error';

/** One flow's result. */
export interface FlowResult {
  readonly payload: string;
  /** The client's source port (null when the connection never got one). */
  readonly localPort: number | null;
  readonly outcome: FlowOutcome;
  /** The error code (ECONNREFUSED, …) when it failed. */
  readonly code?: string;
  readonly ms: number;
}

/** Options of {@link tcpFlows}. */
export interface FlowOptions {
  /** The node's full netns name; null runs the client in this process's namespace (loopback tests). */
  readonly ns: string | null;
  readonly host: string;
  readonly port: number;
  /** One flow per payload. */
  readonly payloads: readonly string[];
  /** How long one flow may take before it counts as dropped (no answer). */
  readonly timeoutMs: number;
}

// Runs inside the namespace: argv[1] is the JSON of {host, port, payloads, timeoutMs}.
const CLIENT = `
const net = require('net');
const o = JSON.parse(process.argv[1]);
const one = (payload) => new Promise((done) => {
  const t0 = Date.now();
  let data = '', port = null, finished = false;
  const s = net.connect({ host: o.host, port: o.port });
  const end = (outcome, code) => { if (finished) return; finished = true; clearTimeout(timer); s.destroy(); done({ payload, localPort: port, outcome, ...(code ? { code } : {}), ms: Date.now() - t0 }); };
  const timer = setTimeout(() => end('timeout'), o.timeoutMs);
  s.on('connect', () => { port = s.localPort; s.end(payload); });
  s.on('data', (b) => { data += b; });
  s.on('close', () => end(data === payload ? 'echoed' : 'wrong-reply'));
  s.on('error', (e) => end(e.code === 'ECONNREFUSED' ? 'refused' : e.code === 'ECONNRESET' ? 'reset' : ['EHOSTUNREACH', 'ENETUNREACH'].includes(e.code) ? 'unreachable' : 'error', e.code));
});
Promise.all(o.payloads.map(one)).then((r) => { process.stdout.write(JSON.stringify(r)); });
`;

/** Opens the flows and waits for all of them; throws only when the client itself cannot run. */
export function tcpFlows(o: FlowOptions): Promise<FlowResult[]> {
  const args = JSON.stringify({ host: o.host, port: o.port, payloads: o.payloads, timeoutMs: o.timeoutMs });
  return runJsonScript<FlowResult[]>({ ns: o.ns, script: CLIENT, args, who: 'TCP client' });
}

/** "3/3 echoed" or "0/1 echoed (1 timeout)". */
export function summarizeFlows(flows: readonly FlowResult[]): string {
  const echoed = flows.filter((f) => f.outcome === 'echoed').length;
  const others = new Map<string, number>();
  for (const f of flows) if (f.outcome !== 'echoed') others.set(f.outcome, (others.get(f.outcome) ?? 0) + 1);
  const rest = [...others].map(([k, n]) => `${n} ${k}`).join(', ');
  return `${echoed}/${flows.length} echoed${rest ? ` (${rest})` : ''}`;
}
