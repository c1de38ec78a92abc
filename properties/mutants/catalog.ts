// Goal: the known bugs the property suites must catch — each a small textual patch to one source file — and
// which suites are expected to catch it.
// Method: a patch is a list of exact `from` → `to` replacements; `from` must occur exactly once in the file, so a
// patch that no longer matches the source fails loudly instead of silently testing nothing. The runner
// (run.ts) applies one mutant at a time to a copy of the tree, never to the checkout.

export interface Replacement {
  from: string;
  to: string;
}

export interface Mutant {
  id: string;
  /** The bug, in words. */
  description: string;
  /** Path from the repository root. */
  file: string;
  replacements: Replacement[];
  /**
   * Suites (paths from the root) run against the mutant; at least one test must fail. The first is the one meant
   * to catch it: the quick check inside `npm test` runs only that one.
   */
  suites: string[];
}

/** The six bugs issue 5 names; `npm test` runs these (quickly), `npm run properties:mutants` runs them all. */
export const REQUIRED = ['mtdl-le-sl', 'remit-without-idempotency', 'ack-before-write', 'aggregate-drops-last', 'reset-one-tick-late', 'signature-ignores-amount'];

export const mutants: Mutant[] = [
  {
    id: 'mtdl-le-sl',
    description: 'MTDL ≤ SL instead of MTDL < SL: a local approval may spend SL to the last unit',
    file: 'machines/domain/means.ts',
    replacements: [{ from: 'if (!(m.localSpentMinor + amountMinor < m.localBalanceMinor))', to: 'if (!(m.localSpentMinor + amountMinor <= m.localBalanceMinor))' }],
    suites: ['properties/means.property.test.ts', 'properties/proxy.model.test.ts'],
  },
  {
    id: 'remit-without-idempotency',
    description: 'an aggregate remittance posted without its idempotency check: transactions already on the ledger are paid again',
    file: 'machines/domain/ledgerPostings.ts',
    replacements: [
      {
        from: `    for (const txId of txIds) {
      const posting = store.getPosting(txId);`,
        to: `    for (const txId of txIds) {
      const posting = undefined as Posting | undefined;`,
      },
    ],
    suites: ['properties/ledger.property.test.ts', 'properties/proxy.model.test.ts'],
  },
  {
    id: 'ack-before-write',
    description: 'the server acknowledges a request when it arrives, before the ledger write is done',
    file: 'machines/server.ts',
    replacements: [
      { from: "import { handleRequest } from './domain/serverRules.ts';", to: "import { handleRequest } from './domain/serverRules.ts';\nimport { signResult } from './domain/requests.ts';" },
      {
        from: `    applyRequest: enqueueActions(({ event, enqueue }) => {
      if (event.type !== 'link.message') return;
      if (!isRequest(event.message)) {
        enqueue.emit({ type: 'server.rejected', reason: \`unexpectedKind:\${event.message.kind}\` });
        return;
      }`,
        to: `    applyRequest: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'link.message') return;
      if (!isRequest(event.message)) {
        enqueue.emit({ type: 'server.rejected', reason: \`unexpectedKind:\${event.message.kind}\` });
        return;
      }
      const req = event.message;
      const early = signResult(context.input.key, {
        kind: 'result', reqId: req.reqId, to: req.from, requestKind: req.kind, ok: true, code: 'ok',
        ...(req.kind === 'remit' ? { posted: req.mode === 'grouped' ? req.transactions.map((t) => t.txId) : req.aggregates.flatMap((a) => a.txIds) } : {}),
        ...(req.kind === 'auth' || req.kind === 'debit' ? { txId: req.claim.txId } : {}),
      });
      enqueue.sendTo('link', { type: 'link.send', to: early.to, message: early } as LinkCommand);`,
      },
    ],
    suites: ['properties/proxy.model.test.ts', 'properties/proxy.scheduled.test.ts'],
  },
  {
    id: 'aggregate-drops-last',
    description: 'an aggregate that drops its last transaction (neither its amount nor its id is remitted)',
    file: 'machines/domain/remittance.ts',
    replacements: [
      {
        from: `  const byKey = new Map<string, AggregateEntry>();
  for (const tx of txs) {`,
        to: `  const byKey = new Map<string, AggregateEntry>();
  for (const tx of txs.slice(0, -1)) {`,
      },
    ],
    suites: ['properties/remittance.property.test.ts', 'properties/proxy.model.test.ts'],
  },
  {
    id: 'reset-one-tick-late',
    description: 'a recurring amount reset one tick after the period boundary instead of at it',
    file: 'machines/domain/means.ts',
    replacements: [
      {
        from: 'const index = periodIndexAt(nowMs, recurring.originMs, recurring.periodMs);',
        to: 'const index = periodIndexAt(nowMs - 1, recurring.originMs, recurring.periodMs);',
      },
    ],
    suites: ['properties/means.property.test.ts'],
  },
  {
    id: 'signature-ignores-amount',
    description: 'the signature over a payment leaves the amount out, so an altered amount still verifies',
    file: 'machines/domain/signature.ts',
    replacements: [
      {
        from: "return ['pay.v3', c.txId, c.amountMinor, c.payee, c.timeMs,",
        to: "return ['pay.v3', c.txId, c.payee, c.timeMs,",
      },
    ],
    suites: ['properties/signatures.property.test.ts', 'properties/ledger.property.test.ts'],
  },
  // ---------------------------------------------------------------- further teeth, beyond the six
  {
    id: 'stale-sync-accepted',
    description: 'a stale SL figure from SD (an older version, arriving late) overwrites a fresh one',
    file: 'machines/domain/means.ts',
    replacements: [{ from: 'if (version < means.balanceVersion) return means;', to: 'if (version < 0) return means;' }],
    suites: ['properties/means.property.test.ts'],
  },
  {
    id: 'ceiling-ignores-amount',
    description: 'the ceiling check forgets the amount being paid, so MTD can end above PD',
    file: 'machines/domain/means.ts',
    replacements: [{ from: 'if (m.ceiling.periodSpentMinor + amountMinor > m.ceiling.ceilingMinor)', to: 'if (m.ceiling.periodSpentMinor > m.ceiling.ceilingMinor)' }],
    suites: ['properties/means.property.test.ts', 'properties/proxy.model.test.ts'],
  },
  {
    id: 'fixed-amount-end-inclusive',
    description: 'a fixed amount still usable at the first instant after its period',
    file: 'machines/domain/means.ts',
    replacements: [{ from: 'if (nowMs >= f.validFromMs + f.periodMs)', to: 'if (nowMs > f.validFromMs + f.periodMs)' }],
    suites: ['properties/means.property.test.ts'],
  },
  {
    id: 'offline-count-off-by-one',
    description: 'one more unremitted offline payment than maxPendingCount is allowed',
    file: 'machines/domain/discriminate.ts',
    replacements: [{ from: 'if (input.pendingCount + 1 > offline.maxPendingCount)', to: 'if (input.pendingCount > offline.maxPendingCount)' }],
    suites: ['properties/discrimination.property.test.ts'],
  },
  {
    id: 'pin-never-blocks',
    description: 'a wrong PIN does not spend a try, so the PIN can be guessed forever',
    file: 'machines/domain/confirmation.ts',
    replacements: [{ from: 'const next = { ...counter, triesLeft: counter.triesLeft - 1 };', to: 'const next = { ...counter };' }],
    suites: ['properties/pin.property.test.ts'],
  },
  {
    id: 'counter-replay-accepted',
    description: 'the server no longer refuses a signature counter reused for another transaction',
    file: 'machines/domain/serverRules.ts',
    replacements: [{ from: 'if (usedBy === undefined) ledger.store.putCounterUse(claim.proxyId, claim.counter, claim.txId);', to: 'if (usedBy === undefined || usedBy !== undefined) return;' }],
    suites: ['properties/ledger.property.test.ts'],
  },
  {
    id: 'repeat-not-recognised',
    description: 'the server forgets the answers it gave, so a duplicated request is handled afresh',
    file: 'machines/domain/serverRules.ts',
    replacements: [{ from: 'if (stored.fingerprint === fingerprint) return stored.result;', to: 'if (stored.fingerprint === fingerprint && stored.fingerprint === "") return stored.result;' }],
    suites: ['properties/ledger.property.test.ts', 'properties/proxy.model.test.ts'],
  },
  // ---------------------------------------------------------------- issue 13: the money paths, re-opened
  {
    id: 'proof-not-bound-to-sale',
    description: 'the POS keeps a proof without checking its signed order id, POS id and nonce, or the txIds it received: an old genuine proof pays for a new sale [item 1]',
    file: 'machines/pos.ts',
    replacements: [
      { from: '    proof.orderId === order.orderId &&\n    proof.posId === input.posId &&\n    proof.nonce === order.nonce &&\n', to: '' },
      { from: '    !receivedTxIds.includes(proof.txId) &&\n', to: '' },
    ],
    suites: ['machines/pos.test.ts'],
  },
  {
    id: 'claim-omits-sale',
    description: "the proxy's signature leaves the order id, POS id and nonce out, so a proof can be relabelled for another sale [item 1]",
    file: 'machines/domain/signature.ts',
    replacements: [{ from: "c.meansId, c.orderId ?? '', c.posId ?? '', c.nonce ?? '', c.path ?? ''];", to: "c.meansId, c.path ?? ''];" }],
    suites: ['properties/signatures.property.test.ts', 'machines/pos.test.ts'],
  },
  {
    id: 'settle-refuses-duplicates',
    description: 'a proof that appears twice in one settlement refuses the whole batch, which its POS rebuilds for ever [item 1]',
    file: 'machines/domain/serverRules.ts',
    replacements: [
      {
        from: '    if (seen.has(proof.txId)) {\n      alreadyPosted.push(proof.txId);\n      continue;\n    }',
        to: "    if (seen.has(proof.txId)) throw new DomainError('badRequest', `transaction ${proof.txId} appears twice`, proof.txId);",
      },
    ],
    suites: ['machines/domain/serverRules.test.ts'],
  },
  {
    id: 'settle-bad-proof-blocks-batch',
    description: 'one proof whose own signature fails refuses the whole settlement, so its POS resends the same bad batch and the good receipts are never credited',
    file: 'machines/domain/serverRules.ts',
    replacements: [{ from: '      refused.push(proof.txId);\n      continue;\n', to: "      throw new DomainError('badProofSignature', `the signature of transaction ${proof.txId} does not verify`, proof.txId);\n" }],
    suites: ['machines/domain/serverRules.test.ts'],
  },
  {
    id: 'request-signs-proof-ids-only',
    description: 'a grouped remittance or settlement is signed over each proof\'s txId and signature only: an altered copy passes the request check and its refusal is stored under the honest id [item 2]',
    file: 'machines/domain/requests.ts',
    replacements: [{ from: "  return [...paymentClaimFields(p), p.sig, p.path, p.serverOutcome ?? '', p.serverSig ?? ''];", to: '  return [p.txId, p.sig];' }],
    suites: ['properties/ledger.property.test.ts', 'properties/signatures.property.test.ts'],
  },
  {
    id: 'badsig-stored-under-honest-id',
    description: 'SD stores its badSignature answer under the request id, so an altered copy arriving first takes the id from the honest request [item 2]',
    file: 'machines/domain/serverRules.ts',
    replacements: [
      {
        from: "  if (!verifyRequest(ctx.scheme, publicKey, req)) return answer(ctx, req, { ok: false, code: 'badSignature', reason: `the signature of ${req.reqId} does not verify` });",
        to: "  if (!verifyRequest(ctx.scheme, publicKey, req)) {\n    const refused = answer(ctx, req, { ok: false, code: 'badSignature', reason: 'bad' });\n    store.transaction(() => store.putResult(req.from, req.reqId, { fingerprint, result: refused }));\n    return refused;\n  }",
      },
    ],
    suites: ['properties/ledger.property.test.ts', 'machines/domain/serverRules.test.ts'],
  },
  {
    id: 'proxy-drops-unstored-refusal',
    description: 'the proxy treats badSignature as final and drops the remittance SD never stored (the altered copy earned it): the payments are never posted [item 2]',
    file: 'machines/domain/proxyRules.ts',
    replacements: [{ from: 'const TRANSIENT_REFUSALS = UNSTORED_REFUSAL_CODES;', to: "const TRANSIENT_REFUSALS: ReadonlySet<string> = new Set(['unknownSender']);" }],
    suites: ['machines/domain/proxyRules.test.ts', 'sim/run/simulator.test.ts'],
  },
  {
    id: 'aggregate-counters-unchecked',
    description: 'SD posts an aggregate without recording its counters, so a replay under fresh txIds or an overlapping aggregate is paid [item 3]',
    file: 'machines/domain/serverRules.ts',
    replacements: [{ from: '      useCounter(ledger, { proxyId, counter: entry.counters[i]!, txId });\n', to: '' }],
    suites: ['properties/ledger.property.test.ts', 'machines/domain/serverRules.test.ts'],
  },
  {
    id: 'aggregate-counters-unsigned',
    description: "an aggregate's counters are outside the request signature, so they can be changed in flight [item 3]",
    file: 'machines/domain/requests.ts',
    replacements: [{ from: '...a.txIds, ...a.counters]', to: '...a.txIds]' }],
    suites: ['properties/signatures.property.test.ts'],
  },
  {
    id: 'validate-inherited-names',
    description: "the broker's field check uses `in`, which finds constructor, toString and __proto__ on every object: such fields pass [item 3b]",
    file: 'broker/validate.ts',
    replacements: [{ from: 'if (known[field] !== true)', to: 'if (!(field in required) && !(field in optional))' }],
    suites: ['broker/validate.test.ts'],
  },
  {
    id: 'remit-request-unchecked',
    description: "the proxy acts on any RemitNow without checking SD's signature: anyone who can reach the terminal sets its remittances off [item 5]",
    file: 'machines/domain/proxyRules.ts',
    replacements: [{ from: '  if (!verifyRemitNow(trust.scheme, trust.serverPublicKey, request)) return', to: '  if (trust.scheme === undefined && !verifyRemitNow(trust.scheme, trust.serverPublicKey, request)) return' }],
    suites: ['machines/proxy.test.ts'],
  },
  {
    id: 'local-payment-never-triggers',
    description: 'a local payment made in coverage does not trigger a remittance even when the policy says onPayment [item 5]',
    file: 'machines/proxyOrders.ts',
    replacements: [{ from: "    triggerRemittance(f, 'payment');\n    triggerRemittance(f, 'backlog');", to: "    triggerRemittance(f, 'backlog');" }],
    suites: ['machines/proxy.test.ts'],
  },
  // ---------------------------------------------------------------- the run's own checkers and the order oracle
  {
    id: 'endcheck-lost-ignored',
    description: 'the INV-4 end check computes what was lost but records no violation for it',
    file: 'sim/check/inv4NothingLostNothingTwice.ts',
    replacements: [{ from: "book.record('INV-4', input.approved.size + aggregates + reversed.length, report.violations);", to: "book.record('INV-4', input.approved.size + aggregates + reversed.length, []);" }],
    suites: ['properties/checkers.property.test.ts'],
  },
  {
    id: 'endcheck-inv5-ignores-signature',
    description: 'the INV-5 end check takes a credited proof as honoured without looking at its signature',
    file: 'sim/check/inv5BeneficiaryNeverHarmed.ts',
    replacements: [{ from: "book.record('INV-5', input.proofs.length, violations);", to: "book.record('INV-5', input.proofs.length, violations.filter((v) => !/verif|signature/i.test(v.message)));" }],
    suites: ['properties/checkers.property.test.ts'],
  },
  {
    id: 'endcheck-down-terminal-ok',
    description: 'the liveness check passes a terminal still down after the drain, its journal never looked at',
    file: 'sim/check/inv7Liveness.ts',
    replacements: [{ from: "if (!up) book.check('INV-7', false,", to: "if (!up) book.check('INV-7', true," }],
    suites: ['properties/checkers.property.test.ts'],
  },
  {
    id: 'oracle-ignores-amount',
    description: 'the order oracle accepts an approval for another amount than the one ordered',
    file: 'sim/check/oracle.ts',
    replacements: [{ from: 'if (proof.amountMinor !== order.amountMinor || proof.payee !== order.payee', to: 'if (proof.payee !== order.payee' }],
    suites: ['properties/checkers.property.test.ts'],
  },
  {
    id: 'oracle-offline-cap-doubled',
    description: "the order oracle lets offline approvals through up to twice the policy's per-payment cap",
    file: 'sim/check/oracle.ts',
    replacements: [{ from: 'if (order.amountMinor > offline.perPaymentCapMinor) return', to: 'if (order.amountMinor > 2 * offline.perPaymentCapMinor) return' }],
    suites: ['properties/checkers.property.test.ts'],
  },
  {
    id: 'oracle-ignores-route',
    description: 'the order oracle never derives the route again: an approval on the wrong side of coverage (B2), past the offline pending caps, or a decline the policy did not call for passes [item 8]',
    file: 'sim/check/oracle.ts',
    replacements: [{ from: '    decidedWith === undefined || !Number.isSafeInteger(order.amountMinor)', to: '    decidedWith !== null || !Number.isSafeInteger(order.amountMinor)' }],
    suites: ['properties/checkers.property.test.ts'],
  },
  {
    id: 'inv7-counts-refused-remittance-drained',
    description: 'INV-7 takes a remittance SD refused and stored as drained, because its proxy dropped it from the outbox [item 8]',
    file: 'sim/check/inv7Liveness.ts',
    replacements: [{ from: "    book.check('INV-7', false, () => `${r.sender}: remittance", to: "    book.check('INV-7', true, () => `${r.sender}: remittance" }],
    suites: ['properties/checkers.property.test.ts'],
  },
  {
    id: 'inv7-ignores-unanswered-orders',
    description: 'INV-7 forgets the app orders still waiting for their answer when the drain time is over: a run whose proxies queued orders faster than SD answered them ends OK',
    file: 'sim/check/inv7Liveness.ts',
    replacements: [{ from: "book.check('INV-7', unansweredOrders.length === 0,", to: "book.check('INV-7', true," }],
    suites: ['sim/check/endChecks.test.ts'],
  },
  {
    id: 'inv6-fingerprint-ignores-stored',
    description: "INV-6's ledger fingerprint leaves out the results SD stored and the counters it recorded: a forgery that takes an honest request id or counter passes as 'changed nothing' [item 8]",
    file: 'machines/domain/invariants.ts',
    replacements: [{ from: '  const sizes = ledger.store?.tableSizes?.();', to: '  const sizes = undefined as ReturnType<LedgerStore["tableSizes"] & {}> | undefined;' }],
    suites: ['machines/domain/invariants.test.ts'],
  },
  {
    id: 'inv5-ignores-server-receipt',
    description: "INV-5 takes a remote payment's proof as honoured without checking SD's signed receipt in it [item 8]",
    file: 'machines/domain/invariants.ts',
    replacements: [{ from: "    if (proof.path === 'remote' && !verifyServerReceipt(", to: "    if (proof.path === 'internal' && !verifyServerReceipt(" }],
    suites: ['machines/domain/invariants.test.ts', 'sim/check/endChecks.test.ts'],
  },
  {
    id: 'run-checks-acknowledged-reversals-only',
    description: 'the run checks only the declined remote payments whose reversal SD acknowledged: one whose hold or debit stayed passes [item 8]',
    file: 'sim/run/runRecord.ts',
    replacements: [{ from: 'const reversed = new Set([...answers.reversed, ...this.declinedRemote]);', to: 'const reversed = new Set([...answers.reversed]);' }],
    suites: ['sim/run/runRecord.test.ts'],
  },
  {
    id: 'inv4-no-payee-reconciliation',
    description: 'INV-4 never reconciles what each payee holds against its approved payments and external credits: money moved to the wrong account with the right postings passes [item 8]',
    file: 'machines/domain/invariants.ts',
    replacements: [{ from: '  if (credits.every((c) => c !== undefined)) {', to: '  if (credits.length < 0) {' }],
    suites: ['machines/domain/invariants.test.ts'],
  },
  {
    id: 'shared-means-whole-balance',
    description: 'a means shared by N proxies gives each the whole of SD’s figure as SL, not 1/N: a family offline can spend N times what SD had',
    file: 'machines/domain/means.ts',
    replacements: [{ from: 'return share > 1 ? Math.floor(serverAvailableMinor / share) : serverAvailableMinor;', to: 'return share > 0 ? serverAvailableMinor : 0;' }],
    suites: ['properties/sharedMeans.property.test.ts'],
  },
  {
    id: 'recurring-leftover-dropped',
    description: 'a recurring amount reset at its period boundary forgets the leftover of the period that ended: SD keeps value the SIM no longer holds',
    file: 'machines/domain/localValue.ts',
    replacements: [{ from: 'const leftoverMinor = recurring.remainingMinor + (periods - 1) * recurring.amountMinor;', to: 'const leftoverMinor = (periods - 1) * recurring.amountMinor;' }],
    suites: ['properties/localValue.property.test.ts'],
  },
  {
    id: 'reload-granted-on-refusal',
    description: 'the SIM gives itself the value of a reload SD refused (insufficient funds): value made on the SIM that no means paid for',
    file: 'machines/domain/localValue.ts',
    replacements: [{ from: '  if (!result.ok) return next;\n', to: '\n' }],
    suites: ['properties/localValue.property.test.ts'],
  },
  {
    id: 'event-period-rolls-by-time',
    description: 'an MTD period that should end only at a remittance or a connection also ends every P by the clock: the ceiling allows more than PD between two events',
    file: 'machines/domain/means.ts',
    replacements: [{ from: 'if (ceiling && ceiling.periodBy === undefined) {', to: 'if (ceiling) {' }],
    suites: ['properties/mtdPeriods.property.test.ts'],
  },
  {
    id: 'top-up-credited-twice',
    description: 'a top-up credits its means twice (a second transfer from outside beside the recorded one): money from nowhere that no agreement drew',
    file: 'machines/domain/ledgerTopUps.ts',
    replacements: [
      {
        from: '  return applyTransfer(store, id, OUTSIDE_ACCOUNT, account.id, rule.amountMinor(id), `top-up after ${trigger}`);',
        to: '  applyTransfer(store, `${id}/again`, OUTSIDE_ACCOUNT, account.id, rule.amountMinor(id), `top-up after ${trigger}`);\n  return applyTransfer(store, id, OUTSIDE_ACCOUNT, account.id, rule.amountMinor(id), `top-up after ${trigger}`);',
      },
    ],
    suites: ['properties/ledger.property.test.ts', 'sim/check/topUpCheck.test.ts'],
  },
  {
    id: 'top-up-unrecorded',
    description: 'a top-up credits its means from outside without its record (a transfer that is not a top-up): money entered that no check can account for',
    file: 'machines/domain/ledgerTopUps.ts',
    replacements: [
      {
        from: '  return applyTransfer(store, id, OUTSIDE_ACCOUNT, account.id, rule.amountMinor(id), `top-up after ${trigger}`);',
        to: '  return applyTransfer(store, `cash:${trigger}`, OUTSIDE_ACCOUNT, account.id, rule.amountMinor(id), `top-up after ${trigger}`);',
      },
    ],
    suites: ['properties/ledger.property.test.ts', 'sim/check/topUpCheck.test.ts'],
  },
];
