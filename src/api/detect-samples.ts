/**
 * Detection objects for the tests that walk the route table (samples.ts `addSpares`): a pending
 * proposal `spare` for Acme (what `POST /v1/dos/proposals/{id}/accept|reject` decide on) and one
 * event, written straight to the store as an agent would (the API has no route that creates them).
 */
import type { ConfigStore } from '../store/types.ts';
import { eventKey, proposalKey, type Proposal } from '../model/detection.ts';

const OBSERVATION: Proposal['observation'] = {
  dst: '203.0.113.100',
  pps: 250_000,
  bps: 160_000_000,
  synPps: 0,
  crossed: ['pps'],
  sources: [{ key: '192.0.2.0/24', pps: 1000, bps: 640_000 }],
  signatures: [{ key: 'udp dport 53 payload deadbeef00010000', pps: 249_000, bps: 159_360_000 }],
};

/** The spare proposal's rule (stored form). */
export const SPARE_RULE = {
  description: 'detected UDP flood to port 53 with payload deadbeef00010000 to 203.0.113.100',
  match: { dst: ['203.0.113.100/32'], protocol: 'udp', dport: [53], payload: { offset: 0, bytes: 'deadbeef00010000' } },
  action: 'drop',
  scope: { tenant: 'acme' },
  expires: '2030-01-01T00:10:00.000Z',
} as const;

/** Writes the spare proposal and event; throws when the store refuses (a broken fixture). */
export async function addDetectionSpares(store: ConfigStore): Promise<void> {
  const proposal = {
    tenant: 'acme',
    state: 'pending',
    rule: SPARE_RULE,
    ttlSeconds: 600,
    createdAt: '2030-01-01T00:00:00.000Z',
    updatedAt: '2030-01-01T00:00:00.000Z',
    expires: '2030-01-01T00:10:00.000Z',
    seenBy: ['ams/s1'],
    observation: OBSERVATION,
  };
  const event = { at: '2030-01-01T00:00:00.000Z', kind: 'proposed', tenant: 'acme', ruleId: 'spare', by: 'ams/s1', observation: OBSERVATION, rule: SPARE_RULE };
  const w = await store.txn({
    then: [
      { op: 'put', key: proposalKey('spare'), value: proposal },
      { op: 'put', key: eventKey('acme', '1893456000000-000001-ams.s1-000000'), value: event },
    ],
  });
  if (!w.ok) throw new Error(`addDetectionSpares: ${w.error.message}`);
}
