/// <reference types="k6" />
// Goal: shared payment means spent from outside the terminals — web shops debiting at once, hotels authorising
// then capturing less (or releasing) — against the payment servers' HTTP interface, while (in a full run) the
// terminals of `payfleet run --mode mqtt` spend from the same means.
// Method: three k6 scenarios: `web_debits` at a constant arrival rate, `hotel_holds` at a ramping arrival rate
// (authorise, then capture part or release), and `retries`, which sends each debit twice with the same
// Idempotency-Key and checks that the second answer is the stored first one. `402 insufficientFunds` is an
// expected answer on a shared means (others spent it first), so it is not an HTTP failure. Thresholds fail
// the run (k6 exits 99) when latency or errors go over; handleSummary writes shared-means-summary.json.
//
//   payfleet http load/k6/shared-means.yaml &        # or a running `payfleet run --mode mqtt`
//   k6 run load/k6/shared-means.ts -e BASE_URL=http://127.0.0.1:8080 -e MEANS=200

import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { Counter, Rate } from 'k6/metrics';
import type { Options } from 'k6/options';
import { answerOf, postMoney, randomInt, randomMeans, writeSummary } from './common.ts';

const RATE = Number(__ENV.RATE ?? '50');
const DURATION = __ENV.DURATION ?? '1m';

const insufficientFunds = new Counter('payfleet_insufficient_funds');
const replayedSame = new Rate('payfleet_replay_same_answer');

http.setResponseCallback(http.expectedStatuses(200, 201, 402));

export const options: Options = {
  scenarios: {
    web_debits: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: 20,
      maxVUs: 200,
      exec: 'webDebit',
    },
    hotel_holds: {
      executor: 'ramping-arrival-rate',
      startRate: 0,
      timeUnit: '1s',
      stages: [
        { target: Math.max(1, Math.round(RATE / 5)), duration: '20s' },
        { target: Math.max(1, Math.round(RATE / 5)), duration: '20s' },
        { target: 0, duration: '20s' },
      ],
      preAllocatedVUs: 10,
      maxVUs: 100,
      exec: 'hotelHold',
    },
    retries: {
      executor: 'constant-arrival-rate',
      rate: Math.max(1, Math.round(RATE / 10)),
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: 5,
      maxVUs: 50,
      exec: 'retriedDebit',
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{scenario:web_debits}': ['p(99)<200'],
    'http_req_duration{scenario:hotel_holds}': ['p(99)<300'],
    checks: ['rate>0.99'],
    payfleet_replay_same_answer: ['rate==1'],
  },
};

/** One run of the script: keys from different runs never collide on a server that keeps its ledger. */
export function setup(): { run: string } {
  return { run: `k6-${Date.now()}` };
}

function key(run: string, what: string): string {
  return `${run}-${what}-${exec.scenario.name}-${exec.scenario.iterationInTest}`;
}

export function webDebit(data: { run: string }): void {
  const means = randomMeans();
  const response = postMoney(`/v1/means/${means}/debits`, key(data.run, 'debit'), { issuer: 'webshop', payee: 'merchant:web', amountMinor: randomInt(100, 3000) }, { op: 'debit' });
  const answer = answerOf(response);
  if (response.status === 402) insufficientFunds.add(1);
  check(response, {
    'debit: 201, or 402 when the shared means is spent': (r) => r.status === 201 || r.status === 402,
    'debit: a signed receipt with every 201': (r) => r.status !== 201 || (answer.receipt?.serverSig ?? '') !== '',
    'debit: a 402 names insufficientFunds and amountMinor': (r) => r.status !== 402 || (answer.error?.code === 'insufficientFunds' && answer.error.field === 'amountMinor'),
  });
}

export function hotelHold(data: { run: string }): void {
  const means = randomMeans();
  const amountMinor = randomInt(1000, 5000);
  const auth = postMoney(`/v1/means/${means}/authorizations`, key(data.run, 'auth'), { issuer: 'hotel', payee: 'merchant:hotel', amountMinor }, { op: 'authorize' });
  if (auth.status === 402) {
    insufficientFunds.add(1);
    return;
  }
  const held = answerOf(auth);
  if (!check(auth, { 'authorize: 201 with a txId': (r) => r.status === 201 && typeof held.txId === 'string' })) return;
  const path = `/v1/means/${means}/authorizations/${encodeURIComponent(held.txId!)}`;
  // Four stays in five end in a capture of part of the hold; the fifth is cancelled.
  const response =
    Math.random() < 0.8
      ? postMoney(`${path}/capture`, key(data.run, 'capture'), { issuer: 'hotel', amountMinor: randomInt(1, amountMinor) }, { op: 'capture' })
      : postMoney(`${path}/release`, key(data.run, 'release'), { issuer: 'hotel' }, { op: 'release' });
  check(response, { 'capture or release: 200': (r) => r.status === 200 });
}

export function retriedDebit(data: { run: string }): void {
  const means = randomMeans();
  const body = { issuer: 'app-server', payee: 'operator:video', amountMinor: randomInt(100, 900) };
  const k = key(data.run, 'retry');
  const first = postMoney(`/v1/means/${means}/debits`, k, body, { op: 'debit' });
  const second = postMoney(`/v1/means/${means}/debits`, k, body, { op: 'debit-retry' });
  const same = first.status === second.status && first.body === second.body && second.headers['Idempotent-Replayed'] === 'true';
  replayedSame.add(same);
  check(second, { 'retry: the stored answer, moving money once': () => same });
}

export function handleSummary(data: { metrics: Record<string, { thresholds?: Record<string, { ok: boolean }> }> }): Record<string, string> {
  return writeSummary('shared-means', data);
}
