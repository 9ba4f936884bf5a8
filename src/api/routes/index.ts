/** The API's route table: every route, in the order hono matches them. */
import type { RouteSpec } from '../route.ts';
import { metaRoutes } from './meta.ts';
import { tenantRoutes } from './tenants.ts';
import { tenantObjectRoutes } from './tenant-objects.ts';
import { firewallRoutes } from './firewall.ts';
import { platformRoutes } from './platform.ts';
import { statusRoutes } from './status.ts';
import { configRoutes } from './config.ts';
import { detectRoutes } from './detect.ts';
import { egressRoutes } from './egress.ts';

/** Every route of the API. */
export const ROUTES: readonly RouteSpec[] = [
  ...metaRoutes(() => ROUTES),
  ...tenantRoutes,
  ...tenantObjectRoutes,
  ...firewallRoutes,
  ...platformRoutes,
  ...statusRoutes,
  ...configRoutes,
  ...detectRoutes,
  ...egressRoutes,
];
