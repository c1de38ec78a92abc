import { describe, expect, it } from 'vitest';
import { applyAcknowledgement, initialProxyState, requestSigner, type ProxyPolicy } from './proxyRules.ts';
import { defaultDiscriminationPolicy } from './discriminate.ts';
import { defaultConfirmationPolicy } from './confirmation.ts';
import { defaultRemittancePolicy, formRemittances, recordLocal } from './remittance.ts';
import { keyFromSeed, signClaim, type PaymentClaim } from './signature.ts';
import { signProof, signResult, UNSTORED_REFUSAL_CODES } from './requests.ts';
import { handleRequest } from './serverRules.ts';
import { Ledger } from './ledger.ts';
import { MemoryLedgerStore } from './ledgerStore.ts';
import type { ServerRequest, ServerResult } from '../messages.ts';

const policy: ProxyPolicy = { discrimination: defaultDiscriminationPolicy, confirmation: defaultConfirmationPolicy, remittance: defaultRemittancePolicy, remoteTimeoutMs: 30_000 };
const proxyKey = keyFromSeed('sim', new Uint8Array(32).fill(1));
const serverKey = keyFromSeed('sim', new Uint8Array(32).fill(9));

/** A proxy with one local payment in one remittance, ready to send. */
function proxyWithRemittance() {
  const claim: PaymentClaim = { txId: 'p1:t1', amountMinor: 700, payee: 'shop', timeMs: 0, counter: 1, proxyId: 'p1', meansId: 'm1', orderId: 'o1' };
  const state = initialProxyState('p1', [], policy);
  const journal = formRemittances(recordLocal(state.journal, signProof(proxyKey, claim, 'localOffline')), defaultRemittancePolicy, requestSigner('p1', proxyKey), 0);
  return { ...state, journal };
}

function refusal(reqId: string, code: string): ServerResult {
  return signResult(serverKey, { kind: 'result', reqId, to: 'p1', requestKind: 'remit', ok: false, code });
}

describe('applyAcknowledgement: the refusals a proxy resends are exactly those SD does not store', () => {
  it('keeps the item on every unstored refusal, and drops it, reported, on a stored one', () => {
    const state = proxyWithRemittance();
    const reqId = state.journal.outbox[0]!.reqId;
    for (const code of UNSTORED_REFUSAL_CODES) {
      const applied = applyAcknowledgement(state, refusal(reqId, code));
      expect(applied.state.journal.outbox.map((i) => i.reqId), code).toEqual([reqId]);
      expect(applied.refused, code).toBeUndefined();
    }
    for (const code of ['insufficientFunds', 'replayedCounter', 'badProofSignature', 'badRequest']) {
      const applied = applyAcknowledgement(state, refusal(reqId, code));
      expect(applied.state.journal.outbox, code).toEqual([]);
      expect(applied.refused, code).toMatchObject({ code, txs: [{ txId: 'p1:t1' }] });
    }
  });

  it('resends the honest remittance after SD refused a copy altered in flight, and it posts', () => {
    const ledger = new Ledger(new MemoryLedgerStore());
    ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 10_000, creditLimitMinor: 0 });
    const ctx = { scheme: 'sim' as const, serverKey, publicKeyOf: (id: string) => (id === 'p1' ? proxyKey.publicKey : undefined), nowMs: 0 };
    const state = proxyWithRemittance();
    const honest = state.journal.outbox[0]!.request;
    const altered = structuredClone(honest) as Extract<ServerRequest, { mode: 'grouped' }>;
    altered.transactions[0]!.amountMinor += 1;
    const afterAltered = applyAcknowledgement(state, handleRequest(ledger, altered, ctx));
    expect(afterAltered.state.journal.outbox).toHaveLength(1);
    const afterHonest = applyAcknowledgement(afterAltered.state, handleRequest(ledger, afterAltered.state.journal.outbox[0]!.request, ctx));
    expect(afterHonest).toMatchObject({ known: true, remitted: [{ txId: 'p1:t1' }] });
    expect(afterHonest.state.journal.outbox).toEqual([]);
    expect(ledger.postingOf('p1:t1')?.amountMinor).toBe(700);
  });
});
