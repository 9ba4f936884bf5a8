/**
 * Eyeballs using the egress proxy, for the lab's egress tests: one Node process inside an
 * eyeball's namespace holds many HTTP CONNECT tunnels open at once and is driven by JSON lines
 * over stdin/stdout, so a test can open tunnels, look at the servers while they are open, probe
 * them again later (after a drain, after an egress address moved) and close them.
 *
 * Two kinds of tunnel, both to the Internet host (internet.ts):
 * - `http`: through the tunnel one `GET /<id>` (HTTP/1.1, kept alive); the host answers with the
 *   address and port the connection came from — the egress address and the source port after the
 *   server's SNAT — so each tunnel knows how it left the platform;
 * - `echo`: to the echo service.
 * A probe sends through every open tunnel a line (echo) or another request (http) and expects
 * the answer: a live connection that lost its path fails it.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

/** One tunnel to open. */
export interface TunnelSpec {
  /** Unique per session: the HTTP path and the echo probes carry it. */
  readonly id: string;
  readonly proxyIp: string;
  readonly proxyPort: number;
  readonly targetIp: string;
  readonly targetPort: number;
  readonly kind: 'http' | 'echo';
}

/** How opening one tunnel went. */
export interface TunnelResult {
  readonly id: string;
  /** The eyeball's source port toward the proxy (null if it never connected). */
  readonly eyeballPort: number | null;
  /** The proxy's CONNECT status (200 = tunnel up), null without an answer. */
  readonly status: number | null;
  /** The proxy's status line and reason body when it refused. */
  readonly reason?: string;
  /** `http` tunnels: where the Internet host saw the connection come from. */
  readonly egress?: { readonly ip: string; readonly port: number };
  /** Why it failed (`timeout`, an errno code, `bad-reply`), absent when it worked. */
  readonly error?: string;
  readonly ms: number;
}

/** One probe of one open tunnel. */
export interface ProbeResult {
  readonly id: string;
  readonly ok: boolean;
  readonly error?: string;
}

// Runs inside the namespace. Commands on stdin, one JSON per line:
//   {"cmd":"open","specs":[…],"concurrency":n,"timeoutMs":t} → {"reply":"open","results":[…]}
//   {"cmd":"probe","timeoutMs":t}                            → {"reply":"probe","results":[…]}
//   {"cmd":"close"}                                          → {"reply":"close","closed":n}, exit
const CLIENT = String.raw`
const net = require('net');
const open = new Map();
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
function tunnel(spec, timeoutMs) {
  return new Promise((done) => {
    const t0 = Date.now();
    const s = net.connect({ host: spec.proxyIp, port: spec.proxyPort });
    let buf = '', stage = 'connect', eyeballPort = null, status = null, finished = false;
    const finish = (r) => {
      if (finished) return; finished = true; clearTimeout(timer);
      if (r.error || status !== 200) s.destroy(); else { s.removeAllListeners('data'); open.set(spec.id, { spec, s, dead: null }); s.on('error', (e) => { const t = open.get(spec.id); if (t) t.dead = e.code || 'error'; }); s.on('close', () => { const t = open.get(spec.id); if (t && !t.dead) t.dead = 'closed'; }); }
      done({ id: spec.id, eyeballPort, status, ms: Date.now() - t0, ...r });
    };
    const timer = setTimeout(() => finish({ error: 'timeout:' + stage }), timeoutMs);
    s.on('connect', () => { eyeballPort = s.localPort; stage = 'head'; s.write('CONNECT ' + spec.targetIp + ':' + spec.targetPort + ' HTTP/1.1\r\nHost: ' + spec.targetIp + ':' + spec.targetPort + '\r\n\r\n'); });
    s.on('error', (e) => finish({ error: e.code || 'error' }));
    s.on('close', () => finish({ error: 'closed:' + stage }));
    s.on('data', (b) => {
      buf += b.toString('latin1');
      if (stage === 'head') {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const line = buf.slice(0, buf.indexOf('\r\n'));
        status = Number(line.split(' ')[1]) || null;
        if (status !== 200) return finish({ reason: buf.slice(0, 300).replace(/\r\n/g, ' | ') });
        buf = buf.slice(end + 4);
        if (spec.kind === 'echo') return finish({});
        stage = 'http';
        s.write('GET /' + spec.id + ' HTTP/1.1\r\nHost: ' + spec.targetIp + '\r\n\r\n');
      }
      if (stage === 'http') {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const len = Number((/content-length: *(\d+)/i.exec(buf.slice(0, end)) || [])[1]);
        const body = buf.slice(end + 4);
        if (!(body.length >= len)) return;
        try { const j = JSON.parse(body.slice(0, len)); finish({ egress: { ip: j.peer, port: j.port } }); } catch { finish({ error: 'bad-reply' }); }
      }
    });
  });
}
async function openAll(specs, concurrency, timeoutMs) {
  const results = []; let next = 0;
  const worker = async () => { while (next < specs.length) { const spec = specs[next++]; results.push(await tunnel(spec, timeoutMs)); } };
  await Promise.all(Array.from({ length: Math.min(concurrency, specs.length) }, worker));
  return results;
}
function probe(t, timeoutMs) {
  return new Promise((done) => {
    if (t.dead) return done({ id: t.spec.id, ok: false, error: t.dead });
    const http = t.spec.kind === 'http';
    const want = http ? 'GET /' + t.spec.id + '/probe HTTP/1.1\r\nHost: ' + t.spec.targetIp + '\r\n\r\n' : 'probe ' + t.spec.id + ' ' + Date.now() + '\n';
    let got = '';
    const onData = (b) => {
      got += b.toString('latin1');
      if (!http) { if (got.length >= want.length) end(got === want ? null : 'wrong-echo'); return; }
      const head = got.indexOf('\r\n\r\n');
      if (head < 0) return;
      const len = Number((/content-length: *(\d+)/i.exec(got.slice(0, head)) || [])[1]);
      if (got.length - head - 4 >= len) end(/^HTTP\/1\.1 200/.test(got) && got.includes('/' + t.spec.id + '/probe') ? null : 'wrong-reply');
    };
    const end = (error) => { clearTimeout(timer); t.s.off('data', onData); if (error && error !== 'wrong-echo') t.dead = t.dead || error; done({ id: t.spec.id, ok: !error, ...(error ? { error } : {}) }); };
    const timer = setTimeout(() => end('timeout'), timeoutMs);
    t.s.on('data', onData);
    t.s.write(want);
  });
}
require('readline').createInterface({ input: process.stdin }).on('line', async (line) => {
  const c = JSON.parse(line);
  if (c.cmd === 'open') say({ reply: 'open', results: await openAll(c.specs, c.concurrency, c.timeoutMs) });
  else if (c.cmd === 'probe') say({ reply: 'probe', results: await Promise.all([...open.values()].map((t) => probe(t, c.timeoutMs))) });
  else if (c.cmd === 'close') { for (const t of open.values()) t.s.destroy(); say({ reply: 'close', closed: open.size }); process.exit(0); }
});
`;

/** A running client process in one eyeball's namespace. */
export class ProxyClients {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waiting: Array<(line: Record<string, unknown>) => void> = [];
  #stderr = '';
  #exited: string | null = null;

  private constructor(readonly ns: string, child: ChildProcessWithoutNullStreams) {
    this.#child = child;
    createInterface({ input: child.stdout }).on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      this.#waiting.shift()?.(msg);
    });
    child.stderr.on('data', (b: Buffer) => void (this.#stderr += b.toString()));
    child.on('close', (code) => {
      this.#exited = `exited ${code}${this.#stderr ? `: ${this.#stderr.trim().slice(0, 500)}` : ''}`;
      for (const w of this.#waiting.splice(0)) w({ reply: 'exit', error: this.#exited });
    });
  }

  /** Starts the client in namespace `ns` (the lab node's full netns name). */
  static start(ns: string): ProxyClients {
    // The last argument only marks the process as the lab's (procs.ts), so lab down finds it.
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', CLIENT, `${ns}-proxy-client`], { stdio: ['pipe', 'pipe', 'pipe'] });
    return new ProxyClients(ns, child);
  }

  #ask(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.#exited !== null) return Promise.reject(new Error(`proxy client in ${this.ns} ${this.#exited}`));
    return new Promise((resolve, reject) => {
      this.#waiting.push((msg) => (msg.reply === 'exit' ? reject(new Error(`proxy client in ${this.ns} ${String(msg.error)}`)) : resolve(msg)));
      this.#child.stdin.write(`${JSON.stringify(cmd)}\n`);
    });
  }

  /** Opens the tunnels, at most `concurrency` at a time; each result once it is up or failed. */
  async open(specs: readonly TunnelSpec[], concurrency = 64, timeoutMs = 10_000): Promise<TunnelResult[]> {
    const r = await this.#ask({ cmd: 'open', specs, concurrency, timeoutMs });
    return r.results as TunnelResult[];
  }

  /** Sends a line (echo) or a request (http) through every open tunnel and waits for the answer. */
  async probe(timeoutMs = 2000): Promise<ProbeResult[]> {
    const r = await this.#ask({ cmd: 'probe', timeoutMs });
    return r.results as ProbeResult[];
  }

  /** Closes every tunnel and ends the process. */
  async close(): Promise<void> {
    if (this.#exited !== null) return;
    await this.#ask({ cmd: 'close' }).catch(() => undefined);
  }

  /** Ends the process at once (tests' cleanup). */
  kill(): void {
    if (this.#exited === null) this.#child.kill('SIGKILL');
  }
}
