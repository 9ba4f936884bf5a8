/**
 * Where a city's traffic lands: the DC whose exchange address is the next hop of the city
 * router's kernel route to the first tenant prefix (BIRD installs the best BGP path there).
 */
import { routes } from '../kernel/labnet.ts';
import { nodeNs } from './names.ts';
import type { LabCity, LabPlan } from './topology.ts';

/** The DC city `c` lands in now, or null when it has no route (or its router cannot be read). */
export async function landsIn(plan: LabPlan, c: LabCity): Promise<string | null> {
  const r = await routes(nodeNs(plan.prefix, c.router));
  if (!r.ok) return null;
  const dst = plan.sites[0]?.prefix;
  const route = r.value.find((x) => x.dst === dst);
  const gw = typeof route?.gateway === 'string' ? route.gateway : null;
  return plan.dcs.find((d) => d.ixIp === gw)?.id ?? null;
}
