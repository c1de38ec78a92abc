/// <reference types="k6" />
// Goal: a proof-verification storm — merchants, POS back offices and app servers checking proofs of payment
// all at once (after an outage, say) — against `POST /v1/proofs/verify` of the payment servers' interface.
// Method: setup() makes RECEIPTS debits to collect genuine receipts signed by SD; then a ramping arrival rate
// verifies them, one in ten altered on the way (another amount or payee), and checks every verdict: a genuine
// receipt is valid and on the ledger, an altered one is refused. A wrong verdict is a failure whatever the
// latency (payfleet_verdict_correct must be 1). handleSummary writes proof-storm-summary.json.
//
//   payfleet http load/k6/shared-means.yaml &
//   k6 run load/k6/proof-storm.ts -e BASE_URL=http://127.0.0.1:8080 -e PEAK=500

import http from 'k6/http';
import { check, fail } from 'k6';
import { Rate } from 'k6/metrics';
import type { Options } from 'k6/options';
import { BASE_URL, answerOf, postMoney, randomInt, randomMeans, writeSummary, type Receipt } from './common.ts';

const PEAK = Number(__ENV.PEAK ?? '300');
const RECEIPTS = Number(__ENV.RECEIPTS ?? '50');

const verdictCorrect = new Rate('payfleet_verdict_correct');

export const options: Options = {
  setupTimeout: '2m',
  scenarios: {
    verify_storm: {
      executor: 'ramping-arrival-rate',
      startRate: 10,
      timeUnit: '1s',
      stages: [
        { target: PEAK, duration: '30s' },
        { target: PEAK, duration: '1m' },
        { target: 10, duration: '30s' },
      ],
      preAllocatedVUs: 50,
      maxVUs: 500,
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.001'],
    'http_req_duration{op:verify}': ['p(95)<50', 'p(99)<100'],
    payfleet_verdict_correct: ['rate==1'],
    checks: ['rate>0.999'],
  },
};

export function setup(): { receipts: Receipt[] } {
  const run = `storm-${Date.now()}`;
  const receipts: Receipt[] = [];
  for (let i = 0; receipts.length < RECEIPTS && i < RECEIPTS * 10; i++) {
    const answer = answerOf(postMoney(`/v1/means/${randomMeans()}/debits`, `${run}-${i}`, { issuer: 'storm-setup', payee: 'merchant:storm', amountMinor: randomInt(100, 500) }, { op: 'setup' }));
    if (answer.receipt) receipts.push(answer.receipt);
  }
  if (receipts.length === 0) fail(`no receipt from ${BASE_URL}: is payfleet http running, with means m0…?`);
  return { receipts };
}

export default function (data: { receipts: Receipt[] }): void {
  const genuine = data.receipts[randomInt(0, data.receipts.length - 1)]!;
  const altered = Math.random() < 0.1;
  const proof = altered ? (Math.random() < 0.5 ? { ...genuine, amountMinor: genuine.amountMinor + 1 } : { ...genuine, payee: 'merchant:thief' }) : genuine;
  const response = http.post(`${BASE_URL}/v1/proofs/verify`, JSON.stringify({ proof }), { headers: { 'Content-Type': 'application/json' }, tags: { op: 'verify' } });
  let verdict: { valid?: boolean; ledger?: string } = {};
  try {
    verdict = response.json() as typeof verdict;
  } catch {
    // An unreadable answer is a wrong verdict below.
  }
  const correct = altered ? verdict.valid === false : verdict.valid === true && verdict.ledger === 'debited';
  verdictCorrect.add(correct);
  check(response, {
    'verify: 200': (r) => r.status === 200,
    'verify: genuine receipts valid and debited, altered ones refused': () => correct,
  });
}

export function handleSummary(data: { metrics: Record<string, { thresholds?: Record<string, { ok: boolean }> }> }): Record<string, string> {
  return writeSummary('proof-storm', data);
}
