/**
 * The OpenAPI 3.1 document, generated from the route table and the zod schemas the routes use, so
 * the description and the server cannot drift apart: a route exists in the document because it
 * is in the table, and its body schema is the one its handler parses with.
 */
import { z } from 'zod';
import type { RouteSpec } from './route.ts';
import { MODEL_SCHEMAS, WIRE_SCHEMAS } from './schemas.ts';
import type { ErrorStatus } from './errors.ts';

/**
 * The id alphabet of model/id.ts as a JSON Schema pattern (the model checks ids with a refinement,
 * which JSON Schema cannot carry); openapi.test.ts holds the two to the same answers.
 */
export const ID_PATTERN = '^[a-z0-9][a-z0-9-]{0,31}$';

type Json = Record<string, unknown>;

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });

/** An object schema with the `id` and `revision` every read adds. */
function objectView(body: Json): Json {
  const properties = { id: { type: 'string', description: "the object's id (last segment of its key)" }, revision: { type: 'integer', minimum: 0, description: 'modRevision of its store key; send it back as If-Match' }, ...((body.properties as Json | undefined) ?? {}) };
  const required = [...new Set(['id', 'revision', ...((body.required as string[] | undefined) ?? [])])];
  return { ...body, properties, required };
}

/**
 * Every component schema, by name. The schemas go through one registry, so a schema used inside
 * another (a Server inside the ConfigDocument) is a `$ref` to its component, not a second copy.
 */
export function componentSchemas(): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [name, schema] of Object.entries({ ...MODEL_SCHEMAS, ...WIRE_SCHEMAS })) registry.add(schema as z.ZodType, { id: name });
  const all = z.toJSONSchema(registry, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any', uri: (id) => `#/components/schemas/${id}` }) as { schemas: Record<string, Json> };
  const out: Record<string, Json> = {};
  for (const [name, schema] of Object.entries(all.schemas)) {
    const { $schema: _dialect, $id: _id, ...rest } = schema;
    out[name] = rest;
  }
  for (const name of Object.keys(MODEL_SCHEMAS)) {
    out[`${name}Object`] = objectView(out[name]!);
    out[`${name}List`] = { type: 'object', properties: { items: { type: 'array', items: ref(`${name}Object`) } }, required: ['items'], additionalProperties: false };
  }
  return out;
}

const ERROR_TEXT: Record<ErrorStatus, string> = {
  400: 'Invalid: every field error in issues (path, field, code, message); nothing was written',
  401: 'No token, or a token nobody issued',
  403: 'Operator-only route called with a tenant token',
  404: "Not found, or another tenant's object",
  405: 'The path has no such method; Allow lists the ones it has',
  409: 'Conflicts with other objects (issues), or a compare-and-set lost (key, currentRevision); nothing was written',
  413: 'Body larger than the limit',
  415: 'Body not sent as application/json',
  429: 'Rate limited; retry after Retry-After seconds',
  500: 'A bug in the API',
  503: 'The config store is unavailable; retry later',
};

/** The error statuses a route can answer, from its properties. */
export function errorStatuses(r: RouteSpec): ErrorStatus[] {
  const s: ErrorStatus[] = [400, 429];
  if (r.scope !== 'public') s.push(401, 404, 503);
  if (r.scope === 'operator') s.push(403);
  if (r.method !== 'GET') s.push(409);
  if (r.body) s.push(413, 415);
  return [...new Set(s)].sort((a, b) => a - b);
}

function operation(r: RouteSpec): Json {
  const parameters: Json[] = [];
  for (const [name, role] of Object.entries(r.params ?? {}))
    parameters.push({ name, in: 'path', required: true, description: role, schema: { type: 'string', pattern: ID_PATTERN } });
  for (const [name, role] of Object.entries(r.query ?? {})) parameters.push({ name, in: 'query', required: false, description: role, schema: { type: 'string', pattern: ID_PATTERN } });
  if (r.ifMatch)
    parameters.push({
      name: 'If-Match',
      in: 'header',
      required: false,
      description: 'Write only if the object is at this revision (as read); 0: only if it does not exist',
      schema: { type: 'integer', minimum: 0 },
    });
  const responses: Json = {
    [String(r.reply.status)]: { description: 'Success', content: { 'application/json': { schema: ref(r.reply.schema) } } },
  };
  for (const s of errorStatuses(r)) responses[String(s)] = { description: ERROR_TEXT[s], content: { 'application/json': { schema: ref('Error') } } };
  return {
    operationId: r.operationId,
    summary: r.summary,
    tags: [r.path.split('/')[2] ?? r.path.split('/')[1] ?? 'meta'],
    security: r.scope === 'public' ? [] : [{ bearer: [] }],
    ...(r.scope === 'operator' ? { description: 'Operator token only.' } : r.scope === 'tenant' ? { description: "Operator token, or the token of the tenant in the path (another tenant's objects answer 404)." } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: ref(r.body) } } } } : {}),
    responses,
  };
}

/** The OpenAPI 3.1 document of a route table. */
export function buildOpenApi(routes: readonly RouteSpec[], version: string): Json {
  const paths: Record<string, Json> = {};
  for (const r of routes) (paths[r.path] ??= {})[r.method.toLowerCase()] = operation(r);
  return {
    openapi: '3.1.0',
    info: {
      title: 'anyedge API',
      version,
      description:
        'Tenants, prefixes, tunnels, routes, firewalls, DoS rules, egress pools and server status of an anyedge platform. ' +
        'Objects read as { id, revision, ...fields }; writes take If-Match: <revision> (0 = must not exist). ' +
        'Errors are { error: { code, message, issues? } }.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'ae_… token: an operator token, or a tenant token from POST /v1/tenants/{t}/token' } },
      schemas: componentSchemas(),
    },
    paths,
  };
}
