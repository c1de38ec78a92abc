import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadScenarioText } from '../scenario/load.ts';
import { openScenarioLedgers, type ScenarioLedgers } from './serveScenario.ts';
import { createPaymentHttpServer, type PaymentHttpServer } from './server.ts';
import { deviceKey, serverKeySeed } from '../core/fleetKeys.ts';
import { keyFromSeed, signClaim, signServerReceipt, type PaymentClaim } from '../../machines/domain/signature.ts';
import { Ledger } from '../../machines/domain/ledger.ts';

const scenario = loadScenarioText(
  `seed: 4\ncrypto: ed25519\npopulation:\n  terminals: 3\n  shards: 2\n  means: [{ name: prepaid, kind: prepaid, openingBalanceMinor: 10000 }]\n`,
  'http.yaml',
);

let ledgers: ScenarioLedgers;
let http: PaymentHttpServer;
let base: string;

beforeAll(async () => {
  ledgers = openScenarioLedgers(scenario);
  http = createPaymentHttpServer(ledgers.options, () => undefined);
  base = await http.listen(0);
});

afterAll(async () => {
  await http.close();
  ledgers.close();
});

let keySeq = 0;
/** `key` null: no Idempotency-Key header; undefined: a fresh key. */
async function post(path: string, body: unknown, key: string | null | undefined = undefined, headers: Record<string, string> = {}) {
  if (key === undefined) key = `k${++keySeq}`;
  const response = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key !== null ? { 'idempotency-key': key } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any>, replayed: response.headers.get('idempotent-replayed') };
}

const available = (meansId: string) => ledgers.options.ledgerOfMeans(meansId).balanceOf(meansId).availableMinor;
const sumOfBalances = () => ledgers.ledgers.reduce((sum, ledger: Ledger) => sum + ledger.sumOfBalancesMinor(), 0);

describe('HTTP interface: debits', () => {
  it('debits a shared means, returns a signed receipt, and the books stay balanced', async () => {
    const before = available('m0');
    const r = await post('/v1/means/m0/debits', { issuer: 'webshop', payee: 'merchant:web', amountMinor: 1250 });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ ok: true, kind: 'debit', meansId: 'm0', amountMinor: 1250, availableMinor: before - 1250 });
    expect(r.body.receipt).toMatchObject({ v: 'receipt.v1', kind: 'debit', txId: r.body.txId, payee: 'merchant:web', issuer: 'webshop' });
    expect(available('m0')).toBe(before - 1250);
    expect(sumOfBalances()).toBe(0);
  });

  it('answers a repeated Idempotency-Key with the same result, moving money once; another payload is 409', async () => {
    const before = available('m1');
    const first = await post('/v1/means/m1/debits', { issuer: 'webshop', payee: 'merchant:web', amountMinor: 700 }, 'order-1');
    const again = await post('/v1/means/m1/debits', { issuer: 'webshop', payee: 'merchant:web', amountMinor: 700 }, 'order-1');
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.replayed).toBe('true');
    expect(available('m1')).toBe(before - 700);
    const other = await post('/v1/means/m1/debits', { issuer: 'webshop', payee: 'merchant:web', amountMinor: 701 }, 'order-1');
    expect(other.status).toBe(409);
    expect(other.body.error).toMatchObject({ code: 'idConflict', field: 'Idempotency-Key' });
    // The same key from another issuer is another request.
    expect((await post('/v1/means/m1/debits', { issuer: 'app-server', payee: 'merchant:web', amountMinor: 700 }, 'order-1')).status).toBe(201);
    expect(available('m1')).toBe(before - 1400);
  });

  it('refuses a debit over the available funds with 402, and gives the same refusal to a retry', async () => {
    const r = await post('/v1/means/m2/debits', { issuer: 'webshop', payee: 'merchant:web', amountMinor: 10_000_000 }, 'too-much');
    expect(r.status).toBe(402);
    expect(r.body.error).toMatchObject({ code: 'insufficientFunds', field: 'amountMinor' });
    const retry = await post('/v1/means/m2/debits', { issuer: 'webshop', payee: 'merchant:web', amountMinor: 10_000_000 }, 'too-much');
    expect(retry).toMatchObject({ status: 402, replayed: 'true' });
  });

  it('refuses bad input with 400 naming the field, an unknown means with 404, and nothing moves', async () => {
    const before = available('m0');
    const cases: Array<[unknown, string | null, string]> = [
      [{ issuer: 'webshop', payee: 'p', amountMinor: 12.5 }, 'a', 'amountMinor'],
      [{ issuer: 'webshop', payee: 'p', amountMinor: -1 }, 'b', 'amountMinor'],
      [{ issuer: 'webshop', payee: 'p', amountMinor: '100' }, 'c', 'amountMinor'],
      [{ issuer: 'webshop', amountMinor: 100 }, 'd', 'payee'],
      [{ payee: 'p', amountMinor: 100 }, 'e', 'issuer'],
      [{ issuer: 'web shop', payee: 'p', amountMinor: 100 }, 'f', 'issuer'],
      [{ issuer: 'webshop', payee: 'p', amountMinor: 100, extra: 1 }, 'g', 'extra'],
      [{ issuer: 'webshop', payee: 'p', amountMinor: 100 }, null, 'Idempotency-Key'],
      [[1, 2], 'h', 'body'],
    ];
    for (const [body, key, field] of cases) {
      const r = await post('/v1/means/m0/debits', body, key);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error, JSON.stringify(body)).toMatchObject({ code: 'badRequest', field });
    }
    const notJson = await post('/v1/means/m0/debits', '{"issuer":', 'i');
    expect(notJson).toMatchObject({ status: 400, body: { error: { code: 'badRequest', field: 'body' } } });
    const wrongType = await post('/v1/means/m0/debits', '{}', 'j', { 'content-type': 'text/plain' });
    expect(wrongType).toMatchObject({ status: 415, body: { error: { field: 'Content-Type' } } });
    const tooBig = await post('/v1/means/m0/debits', JSON.stringify({ pad: 'x'.repeat(70_000) }), 'k');
    expect(tooBig.status).toBe(413);
    const unknown = await post('/v1/means/nope/debits', { issuer: 'webshop', payee: 'p', amountMinor: 100 });
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: 'unknownMeans', field: 'meansId' } } });
    expect((await fetch(`${base}/v1/nothing`)).status).toBe(404);
    expect((await fetch(`${base}/v1/means/m0/debits`)).status).toBe(405);
    expect(available('m0')).toBe(before);
  });
});

describe('HTTP interface: authorisations', () => {
  it('holds, captures part, and refuses a release after the capture; a second hold is released', async () => {
    const before = available('m2');
    const auth = await post('/v1/means/m2/authorizations', { issuer: 'hotel', payee: 'merchant:hotel', amountMinor: 3000 }, 'stay-1');
    expect(auth.status).toBe(201);
    expect(auth.body).toMatchObject({ kind: 'authorization', availableMinor: before - 3000 });
    const txId = encodeURIComponent(auth.body.txId);
    const otherIssuer = await post(`/v1/means/m2/authorizations/${txId}/capture`, { issuer: 'thief', amountMinor: 10 });
    expect(otherIssuer).toMatchObject({ status: 403, body: { error: { code: 'senderMismatch', field: 'issuer' } } });
    const tooMuch = await post(`/v1/means/m2/authorizations/${txId}/capture`, { issuer: 'hotel', amountMinor: 3001 });
    expect(tooMuch).toMatchObject({ status: 422, body: { error: { code: 'captureExceedsHold', field: 'amountMinor' } } });
    const capture = await post(`/v1/means/m2/authorizations/${txId}/capture`, { issuer: 'hotel', amountMinor: 2500 });
    expect(capture.status).toBe(200);
    expect(capture.body).toMatchObject({ kind: 'capture', amountMinor: 2500, payee: 'merchant:hotel', availableMinor: before - 2500 });
    const release = await post(`/v1/means/m2/authorizations/${txId}/release`, { issuer: 'hotel' });
    expect(release).toMatchObject({ status: 409, body: { error: { code: 'holdCaptured' } } });

    const second = await post('/v1/means/m2/authorizations', { issuer: 'hotel', payee: 'merchant:hotel', amountMinor: 1000 }, 'stay-2');
    const secondId = encodeURIComponent(second.body.txId);
    expect((await post(`/v1/means/m2/authorizations/${secondId}/release`, { issuer: 'hotel' })).status).toBe(200);
    expect((await post(`/v1/means/m2/authorizations/${secondId}/capture`, { issuer: 'hotel', amountMinor: 1000 })).body.error.code).toBe('holdReleased');
    expect(available('m2')).toBe(before - 2500);
    expect(sumOfBalances()).toBe(0);
  });
});

describe('HTTP interface: proofs, health, metrics', () => {
  it("verifies SD's receipts and a proxy's proof, and refuses altered ones", async () => {
    const debit = await post('/v1/means/m0/debits', { issuer: 'webshop', payee: 'merchant:web', amountMinor: 99 });
    const receipt = debit.body.receipt;
    const ok = await post('/v1/proofs/verify', { proof: receipt }, null);
    expect(ok).toMatchObject({ status: 200, body: { valid: true, kind: 'receipt', ledger: 'debited' } });
    const altered = await post('/v1/proofs/verify', { proof: { ...receipt, amountMinor: 9900 } }, null);
    expect(altered.body).toMatchObject({ valid: false, signature: 'bad', ledger: 'mismatch' });

    const claim: PaymentClaim = { txId: 't1:tx9', amountMinor: 450, payee: 'shop', timeMs: 1000, counter: 9, proxyId: 't1', meansId: 'm1', path: 'localOffline' };
    const sig = signClaim(deviceKey(scenario, 't1'), claim);
    const proof = await post('/v1/proofs/verify', { proof: { ...claim, sig, path: 'localOffline' } }, null);
    // Signed by the terminal, not yet remitted to SD.
    expect(proof.body).toMatchObject({ valid: true, kind: 'proof', signature: 'ok', ledger: 'notFound' });
    const forged = await post('/v1/proofs/verify', { proof: { ...claim, amountMinor: 45, sig, path: 'localOffline' } }, null);
    expect(forged.body).toMatchObject({ valid: false, signature: 'bad' });
    const stranger = await post('/v1/proofs/verify', { proof: { ...claim, proxyId: 'x9', sig } }, null);
    expect(stranger.body).toMatchObject({ valid: false, signature: 'unknownSigner' });
    // The path is signed: the same proof relabelled is not the proxy's.
    const relabelled = await post('/v1/proofs/verify', { proof: { ...claim, sig, path: 'internal' } }, null);
    expect(relabelled.body).toMatchObject({ valid: false, signature: 'bad' });
    // A remote proof is valid only with SD's signed receipt of exactly that payment.
    const sdKey = keyFromSeed(scenario.crypto, serverKeySeed(scenario));
    const remoteClaim: PaymentClaim = { ...claim, txId: 't1:tx10', counter: 10, path: 'remote' };
    const remoteSig = signClaim(deviceKey(scenario, 't1'), remoteClaim);
    const receiptSig = signServerReceipt(sdKey, remoteClaim, 'debited');
    const remote = await post('/v1/proofs/verify', { proof: { ...remoteClaim, sig: remoteSig, serverOutcome: 'debited', serverSig: receiptSig } }, null);
    expect(remote.body).toMatchObject({ valid: true, signature: 'ok', serverSignature: 'ok' });
    const noReceipt = await post('/v1/proofs/verify', { proof: { ...remoteClaim, sig: remoteSig } }, null);
    expect(noReceipt.body).toMatchObject({ valid: false, signature: 'noServerReceipt', serverSignature: 'absent' });
    const otherOutcome = await post('/v1/proofs/verify', { proof: { ...remoteClaim, sig: remoteSig, serverOutcome: 'authorised', serverSig: receiptSig } }, null);
    expect(otherOutcome.body).toMatchObject({ valid: false, signature: 'badServerReceipt', serverSignature: 'bad' });
    const malformed = await post('/v1/proofs/verify', { proof: { ...claim, counter: 'nine', sig } }, null);
    expect(malformed).toMatchObject({ status: 400, body: { error: { field: 'proof.counter' } } });
    expect((await post('/v1/proofs/verify', {}, null)).body.error.field).toBe('proof');
  });

  it('reports health and metrics in the Prometheus text format', async () => {
    const health = await fetch(`${base}/v1/health`);
    expect(await health.json()).toEqual({ status: 'ok', shards: 2, store: 'memory', scheme: 'ed25519' });
    const balance = await fetch(`${base}/v1/means/m0`);
    expect(await balance.json()).toMatchObject({ meansId: 'm0', availableMinor: available('m0') });
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const text = await metrics.text();
    expect(text).toMatch(/^# TYPE payfleet_http_requests_total counter$/m);
    expect(text).toMatch(/^payfleet_http_requests_total\{route="\/v1\/means\/\{id\}\/debits",status="201"\} \d+$/m);
    expect(text).toMatch(/^payfleet_http_requests_total\{route="\/v1\/means\/\{id\}\/debits",status="400"\} \d+$/m);
    expect(text).toMatch(/^payfleet_http_request_duration_seconds_bucket\{route="\/v1\/health",le="\+Inf"\} 1$/m);
    expect(text).toMatch(/^payfleet_http_refusals_total\{code="insufficientFunds"\} \d+$/m);
    expect(text).toMatch(/^payfleet_http_idempotent_replays_total [1-9]\d*$/m);
    // Every sample line is `name{labels} value` or `name value`.
    for (const line of text.trim().split('\n').filter((l) => !l.startsWith('#'))) expect(line).toMatch(/^[a-z_]+(\{.*\})? [0-9.e+-]+$/);
  });
});

describe('HTTP interface over SQLite ledgers', () => {
  it('answers a repeated key with the stored answer after a restart of the server', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'payfleet-http-'));
    const request = { issuer: 'webshop', payee: 'merchant:web', amountMinor: 321 };
    const call = async (server: PaymentHttpServer, url: string) => {
      void server;
      const response = await fetch(`${url}/v1/means/m0/debits`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'durable-1' }, body: JSON.stringify(request) });
      return { status: response.status, body: await response.json(), replayed: response.headers.get('idempotent-replayed') };
    };
    const first = openScenarioLedgers(scenario, dir);
    const one = createPaymentHttpServer(first.options, () => undefined);
    const a = await call(one, await one.listen(0));
    await one.close();
    first.close();

    const second = openScenarioLedgers(scenario, dir);
    const two = createPaymentHttpServer(second.options, () => undefined);
    const b = await call(two, await two.listen(0));
    expect(second.options.storeKind).toBe('sqlite');
    expect(a.status).toBe(201);
    expect(b).toEqual({ ...a, replayed: 'true' });
    expect(second.options.ledgerOfMeans('m0').balanceOf('m0').availableMinor).toBe(10_000 - 321);
    await two.close();
    second.close();
  });
});
