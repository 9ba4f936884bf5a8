/**
 * Routes about the API itself, open without a token: the OpenAPI document and a health check
 * that answers only when the store does.
 */
import { readFileSync } from 'node:fs';
import { err, ok } from '../../lib/result.ts';
import { fromStoreError } from '../errors.ts';
import { buildOpenApi } from '../openapi.ts';
import type { RouteSpec } from '../route.ts';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The meta routes; `table` is the whole route table the document describes (built once, on first use). */
export function metaRoutes(table: () => readonly RouteSpec[]): RouteSpec[] {
  let doc: unknown;
  return [
    {
      method: 'GET',
      path: '/openapi.json',
      scope: 'public',
      operationId: 'getOpenApi',
      summary: 'This OpenAPI 3.1 document',
      reply: { status: 200, schema: 'OpenApiDocument' },
      handle: async () => ok({ status: 200, body: (doc ??= buildOpenApi(table(), packageVersion())) }),
    },
    {
      method: 'GET',
      path: '/healthz',
      scope: 'public',
      operationId: 'getHealth',
      summary: 'Whether the API can reach its store, and the store revision',
      reply: { status: 200, schema: 'Health' },
      handle: async (ctx) => {
        const s = await ctx.store.status();
        return s.ok ? ok({ status: 200, body: { status: 'ok', revision: s.value.revision } }) : err(fromStoreError(s.error));
      },
    },
  ];
}
