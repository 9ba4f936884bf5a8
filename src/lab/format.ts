/**
 * The plan as canonical text, one object per line (what `lab up --dry-run` prints and the golden
 * files hold): namespaces, bridges, veths with addresses, routes, sysctls, BGP, agents, sites.
 */
import type { LabLinkEnd, LabPlan } from './topology.ts';

function end(e: LabLinkEnd): string {
  const extra = [...e.addrs, ...(e.master ? [`master ${e.master}`] : []), ...(e.txOff ? ['tx-checksum off'] : []), ...(e.mtu ? [`mtu ${e.mtu}`] : []), ...(e.xdpPass ? ['xdp_pass'] : [])];
  return `${e.node}:${e.dev}${extra.length ? ` (${extra.join(', ')})` : ''}`;
}

/** Everything but the BIRD configurations and the config document. */
export function formatPlan(p: LabPlan): string {
  const out: string[] = [];
  out.push(`lab ${p.prefix}: ${p.size.dcs} data center(s) × ${p.size.servers} server(s), ${p.size.cities} cities`);
  out.push('');
  out.push('# namespaces');
  for (const n of p.nodes) out.push(`netns ${n.ns} ${n.role}`);
  out.push('');
  out.push('# bridges');
  for (const b of p.bridges) {
    const extra = [...b.addrs, ...(b.mtu ? [`mtu ${b.mtu}`] : [])];
    out.push(`bridge ${b.node}:${b.dev}${extra.length ? ` (${extra.join(', ')})` : ''}`);
  }
  out.push('');
  out.push('# veth pairs');
  for (const l of p.links) out.push(`veth ${end(l.a)} -- ${end(l.b)}`);
  out.push('');
  out.push('# routes');
  for (const r of p.routes) out.push(`route ${r.node}: ${r.dst}${r.via ? ` via ${r.via}` : ''}${r.dev ? ` dev ${r.dev}` : ''}${r.onlink ? ' onlink' : ''}`);
  out.push('');
  out.push('# sysctls');
  for (const s of p.sysctls) out.push(`sysctl ${s.node}: ${s.key}=${s.value}`);
  out.push('');
  out.push('# BGP');
  for (const b of p.bird) out.push(`bird ${b.node} (${b.kind}) AS ${b.as}: sessions ${b.sessions.join(' ')}`);
  for (const c of p.cities) out.push(`city ${c.id} AS ${c.as} eyeball ${c.eyeballIp} (${c.country}): prefers ${c.prefers.join(' > ')}`);
  out.push(`internet ${p.internet.node} AS ${p.internet.as} ${p.internet.ip} http/${p.internet.httpPort} echo/${p.internet.echoPort}: prefers ${p.internet.prefers.join(' > ')}`);
  out.push(`backbone ${p.backbone}: ${p.dcs.map((d) => `${d.id} ${d.backboneIp}`).join(', ')}`);
  out.push('');
  out.push('# agents');
  for (const a of p.agents) out.push(`agent ${a.dc}/${a.server} netns ${a.ns} --prefix ${a.prefix} --bpf ${a.bpf}`);
  out.push('');
  out.push('# services');
  for (const l of p.localAddrs) out.push(`addr ${l.node}:lo ${l.addr}`);
  for (const x of p.proxies) out.push(`proxy ${x.dc}/${x.server} netns ${x.ns} --listen ${x.ip}:${x.port} --class ${x.class} --metrics ${x.metrics}`);
  out.push('');
  out.push('# customer sites');
  for (const s of p.sites)
    out.push(`site ${s.tenant}: router ${s.router} ${s.routerIp} (city ${s.city}, via ${s.gateway} on-link, programs ${s.bpf}), host ${s.host} ${s.hostIp} tcp/${s.port}${s.key !== undefined ? `, key ${s.key}` : ''}${s.inner ? `, inner ${s.inner.theirs}` : ''}`);
  return `${out.join('\n')}\n`;
}

/** Every BIRD configuration, each under a `# === <node> ===` line. */
export function formatBird(p: LabPlan): string {
  return p.bird.map((b) => `# === ${b.node} ===\n${b.config}`).join('\n');
}
