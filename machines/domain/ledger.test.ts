import { describe, it, expect } from 'vitest';
import { Ledger, LOSS_ACCOUNT, FLOAT_ACCOUNT, payeeAccount } from './ledger.ts';
import { DomainError } from './money.ts';
import { ConservingStore } from '../testing/conservingStore.ts';

function setup(openingBalanceMinor = 1000) {
  const store = new ConservingStore();
  const ledger = new Ledger(store);
  ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor, creditLimitMinor: 0 });
  return { store, ledger };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof DomainError) return error.code;
    throw error;
  }
  return undefined;
}

const pay = (txId: string, amountMinor: number, payee = 'shop') => ({ txId, meansId: 'm1', payee, amountMinor, requestId: 'p1/r', proxyId: 'p1' });
const balance = (ledger: Ledger, id: string) => ledger.accountOf(id)?.balanceMinor ?? 0;

describe('Ledger: accounts and conservation', () => {
  it('opens a means from the float, and opening again with the same figures changes nothing', () => {
    const { ledger, store } = setup(1000);
    expect(ledger.balanceOf('m1')).toEqual({ meansId: 'm1', availableMinor: 1000, version: 1 });
    expect(balance(ledger, FLOAT_ACCOUNT)).toBe(-1000);
    expect(ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 1000, creditLimitMinor: 0 }).version).toBe(1);
    expect(codeOf(() => ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 500, creditLimitMinor: 0 }))).toBe('idConflict');
    expect(ledger.balanceOf('m1').availableMinor).toBe(1000);
    expect(store.checks).toBeGreaterThan(0);
  });

  it('keeps the sum of balances at zero through a mix of every operation, refusals included', () => {
    const { ledger, store } = setup(1000);
    ledger.openMeans({ meansId: 'm2', kind: 'postpaid', openingBalanceMinor: 0, creditLimitMinor: 300 });
    ledger.hold({ txId: 'h1', meansId: 'm1', payee: 'shop', amountMinor: 200, proxyId: 'p1' });
    ledger.capture({ txId: 'h1', amountMinor: 150, requestId: 'p1/c' });
    ledger.debit(pay('d1', 100));
    ledger.postPayment(pay('l1', 2000), 'remit');
    ledger.spendElsewhere({ transferId: 'e1', meansId: 'm2', payee: 'other', amountMinor: 250 });
    codeOf(() => ledger.spendElsewhere({ transferId: 'e2', meansId: 'm2', payee: 'other', amountMinor: 100 }));
    ledger.postAggregate({ id: 'a1', meansId: 'm2', payee: 'shop', sumMinor: 90, txIds: ['x1', 'x2'], requestId: 'p2/r' });
    expect(ledger.sumOfBalancesMinor()).toBe(0);
    expect(store.checks).toBeGreaterThanOrEqual(9);
  });

  it('refuses a credit limit on anything but a postpaid means', () => {
    const ledger = new Ledger(new ConservingStore());
    expect(codeOf(() => ledger.openMeans({ meansId: 'm', kind: 'prepaid', openingBalanceMinor: 0, creditLimitMinor: 10 }))).toBe('badMeans');
    expect(ledger.balances()).toEqual([]);
  });

  it('lets a postpaid means spend down to minus its credit limit and no further', () => {
    const ledger = new Ledger(new ConservingStore());
    ledger.openMeans({ meansId: 'post', kind: 'postpaid', openingBalanceMinor: 100, creditLimitMinor: 500 });
    expect(ledger.balanceOf('post').availableMinor).toBe(600);
    ledger.spendElsewhere({ transferId: 's1', meansId: 'post', payee: 'shop', amountMinor: 600 });
    expect(ledger.accountOf('means:post')?.balanceMinor).toBe(-500);
    expect(ledger.balanceOf('post').availableMinor).toBe(0);
    expect(codeOf(() => ledger.spendElsewhere({ transferId: 's2', meansId: 'post', payee: 'shop', amountMinor: 1 }))).toBe('insufficientFunds');
  });

  it('refuses amounts that are not integer minor units', () => {
    const { ledger } = setup();
    expect(codeOf(() => ledger.spendElsewhere({ transferId: 't', meansId: 'm1', payee: 'shop', amountMinor: 1.5 }))).toBe('badAmount');
    expect(codeOf(() => ledger.postPayment(pay('t', -1), 'remit'))).toBe('badAmount');
    expect(codeOf(() => ledger.debit(pay('t', 5)))).toBe(undefined);
  });

  it('refuses operations on a means that was never opened', () => {
    const { ledger } = setup();
    expect(codeOf(() => ledger.balanceOf('nope'))).toBe('unknownMeans');
    expect(codeOf(() => ledger.postPayment({ ...pay('t', 1), meansId: 'nope' }, 'remit'))).toBe('unknownMeans');
  });
});

describe('Ledger: transfer idempotency', () => {
  it('answers the same transfer id and payload with the original transfer, moving nothing again', () => {
    const { ledger } = setup(1000);
    const first = ledger.spendElsewhere({ transferId: 'e1', meansId: 'm1', payee: 'other', amountMinor: 700 });
    // Available is now 300: the repeat must still succeed because it is the same transfer.
    const again = ledger.spendElsewhere({ transferId: 'e1', meansId: 'm1', payee: 'other', amountMinor: 700 });
    expect(again).toEqual(first);
    expect(ledger.balanceOf('m1')).toEqual({ meansId: 'm1', availableMinor: 300, version: 2 });
    expect(balance(ledger, payeeAccount('other'))).toBe(700);
  });

  it('refuses the same transfer id with another payload, changing nothing', () => {
    const { ledger } = setup(1000);
    ledger.spendElsewhere({ transferId: 'e1', meansId: 'm1', payee: 'other', amountMinor: 100 });
    const before = ledger.accounts();
    expect(codeOf(() => ledger.spendElsewhere({ transferId: 'e1', meansId: 'm1', payee: 'other', amountMinor: 101 }))).toBe('idConflict');
    expect(codeOf(() => ledger.spendElsewhere({ transferId: 'e1', meansId: 'm1', payee: 'thief', amountMinor: 100 }))).toBe('idConflict');
    expect(ledger.accounts()).toEqual(before);
  });

  it('refuses a shared means spent elsewhere beyond its available funds', () => {
    const { ledger } = setup(100);
    expect(codeOf(() => ledger.spendElsewhere({ transferId: 'e1', meansId: 'm1', payee: 'other', amountMinor: 101 }))).toBe('insufficientFunds');
    expect(ledger.balanceOf('m1')).toEqual({ meansId: 'm1', availableMinor: 100, version: 1 });
  });
});

describe('Ledger: holds', () => {
  it('reduces available by the hold, and capture posts the captured part and gives back the rest', () => {
    const { ledger } = setup(1000);
    ledger.hold({ txId: 'h1', meansId: 'm1', payee: 'shop', amountMinor: 400, proxyId: 'p1' });
    expect(ledger.balanceOf('m1').availableMinor).toBe(600);
    expect(balance(ledger, 'means:m1')).toBe(1000);
    const outcome = ledger.capture({ txId: 'h1', amountMinor: 250, requestId: 'p1/c1' });
    expect(outcome.alreadyPosted).toBe(false);
    expect(outcome.posting).toMatchObject({ txId: 'h1', amountMinor: 250, via: 'capture' });
    expect(ledger.balanceOf('m1').availableMinor).toBe(750);
    expect(balance(ledger, payeeAccount('shop'))).toBe(250);
    expect(ledger.holdOf('h1')?.state).toBe('captured');
  });

  it('treats a second capture of the same amount as the same result, changing nothing', () => {
    const { ledger } = setup(1000);
    ledger.hold({ txId: 'h1', meansId: 'm1', payee: 'shop', amountMinor: 400, proxyId: 'p1' });
    const first = ledger.capture({ txId: 'h1', amountMinor: 400, requestId: 'p1/c1' });
    const figure = ledger.balanceOf('m1');
    const second = ledger.capture({ txId: 'h1', amountMinor: 400, requestId: 'p1/c2' });
    expect(second.posting).toEqual(first.posting);
    expect(second.alreadyPosted).toBe(true);
    expect(ledger.balanceOf('m1')).toEqual(figure);
    expect(balance(ledger, payeeAccount('shop'))).toBe(400);
    expect(codeOf(() => ledger.capture({ txId: 'h1', amountMinor: 300, requestId: 'p1/c3' }))).toBe('idConflict');
  });

  it('refuses a hold beyond available, a capture beyond the hold, and a capture of a released hold', () => {
    const { ledger } = setup(1000);
    expect(codeOf(() => ledger.hold({ txId: 'big', meansId: 'm1', payee: 'shop', amountMinor: 1001, proxyId: 'p1' }))).toBe('insufficientFunds');
    ledger.hold({ txId: 'h1', meansId: 'm1', payee: 'shop', amountMinor: 400, proxyId: 'p1' });
    expect(codeOf(() => ledger.capture({ txId: 'h1', amountMinor: 401, requestId: 'r' }))).toBe('captureExceedsHold');
    ledger.release({ txId: 'h1' });
    expect(ledger.balanceOf('m1').availableMinor).toBe(1000);
    expect(codeOf(() => ledger.capture({ txId: 'h1', amountMinor: 100, requestId: 'r' }))).toBe('holdReleased');
    expect(codeOf(() => ledger.capture({ txId: 'none', amountMinor: 1, requestId: 'r' }))).toBe('unknownHold');
  });

  it('releases twice as a no-op and refuses to release a captured hold', () => {
    const { ledger } = setup(1000);
    ledger.hold({ txId: 'h1', meansId: 'm1', payee: 'shop', amountMinor: 400, proxyId: 'p1' });
    ledger.release({ txId: 'h1' });
    const figure = ledger.balanceOf('m1');
    expect(ledger.release({ txId: 'h1' }).state).toBe('released');
    expect(ledger.balanceOf('m1')).toEqual(figure);
    ledger.hold({ txId: 'h2', meansId: 'm1', payee: 'shop', amountMinor: 100, proxyId: 'p1' });
    ledger.capture({ txId: 'h2', amountMinor: 100, requestId: 'r' });
    expect(codeOf(() => ledger.release({ txId: 'h2' }))).toBe('holdCaptured');
  });

  it('keeps funds reserved by a hold out of reach of a local payment, which goes to loss instead', () => {
    const { ledger } = setup(1000);
    ledger.hold({ txId: 'h1', meansId: 'm1', payee: 'shop', amountMinor: 800, proxyId: 'p1' });
    const outcome = ledger.postPayment(pay('l1', 500), 'remit');
    expect(outcome.shortfallMinor).toBe(300);
    ledger.capture({ txId: 'h1', amountMinor: 800, requestId: 'r' });
    expect(balance(ledger, 'means:m1')).toBe(0);
  });
});

describe('Ledger: payments', () => {
  it('posts a local payment once per txId', () => {
    const { ledger } = setup(1000);
    const first = ledger.postPayment(pay('l1', 300), 'remit');
    const again = ledger.postPayment(pay('l1', 300), 'settle');
    expect(first.alreadyPosted).toBe(false);
    expect(again).toEqual({ posting: first.posting, alreadyPosted: true, shortfallMinor: 0 });
    expect(balance(ledger, payeeAccount('shop'))).toBe(300);
    expect(ledger.postings()).toHaveLength(1);
  });

  it('credits the payee in full when a local payment overdraws, the shortfall going to loss', () => {
    const { ledger } = setup(100);
    const outcome = ledger.postPayment(pay('l1', 250), 'remit');
    expect(outcome.shortfallMinor).toBe(150);
    expect(balance(ledger, payeeAccount('shop'))).toBe(250);
    expect(balance(ledger, 'means:m1')).toBe(0);
    expect(balance(ledger, LOSS_ACCOUNT)).toBe(-150);
    expect(ledger.balanceOf('m1').availableMinor).toBe(0);
    // Once empty, the whole of the next one goes to loss.
    expect(ledger.postPayment(pay('l2', 40), 'remit').shortfallMinor).toBe(40);
    expect(balance(ledger, payeeAccount('shop'))).toBe(290);
  });

  it('refuses the same txId presented as another payment, changing nothing', () => {
    const { ledger } = setup(1000);
    ledger.postPayment(pay('l1', 300), 'remit');
    const before = ledger.accounts();
    expect(codeOf(() => ledger.postPayment(pay('l1', 301), 'remit'))).toBe('idConflict');
    expect(codeOf(() => ledger.postPayment(pay('l1', 300, 'thief'), 'settle'))).toBe('idConflict');
    expect(ledger.accounts()).toEqual(before);
  });

  it('debits at once, refuses when short, and does not pay a debit twice', () => {
    const { ledger } = setup(100);
    expect(codeOf(() => ledger.debit(pay('d1', 101)))).toBe('insufficientFunds');
    expect(ledger.postingOf('d1')).toBeUndefined();
    ledger.debit(pay('d2', 100));
    // Repeating it after the money is gone finds it posted instead of refusing it.
    expect(ledger.debit(pay('d2', 100)).alreadyPosted).toBe(true);
    expect(balance(ledger, payeeAccount('shop'))).toBe(100);
  });

  it('pays a proof of an authorised payment from its hold, and a later capture finds it captured', () => {
    const { ledger } = setup(1000);
    ledger.hold({ txId: 'h1', meansId: 'm1', payee: 'shop', amountMinor: 900, proxyId: 'p1' });
    const settled = ledger.postPayment(pay('h1', 900), 'settle');
    expect(settled.shortfallMinor).toBe(0);
    expect(ledger.holdOf('h1')?.state).toBe('captured');
    expect(ledger.capture({ txId: 'h1', amountMinor: 900, requestId: 'r' }).alreadyPosted).toBe(true);
    expect(balance(ledger, payeeAccount('shop'))).toBe(900);
    expect(ledger.balanceOf('m1').availableMinor).toBe(100);
  });

  it('increases the version of a means on every change to it, and only then', () => {
    const { ledger } = setup(1000);
    const versions = [ledger.balanceOf('m1').version];
    ledger.hold({ txId: 'h1', meansId: 'm1', payee: 'shop', amountMinor: 10, proxyId: 'p1' });
    versions.push(ledger.balanceOf('m1').version);
    ledger.release({ txId: 'h1' });
    versions.push(ledger.balanceOf('m1').version);
    ledger.postPayment(pay('l1', 5), 'remit');
    versions.push(ledger.balanceOf('m1').version);
    ledger.spendElsewhere({ transferId: 'e', meansId: 'm1', payee: 'x', amountMinor: 5 });
    versions.push(ledger.balanceOf('m1').version);
    for (let i = 1; i < versions.length; i++) expect(versions[i]).toBeGreaterThan(versions[i - 1]!);
    ledger.postPayment(pay('l1', 5), 'remit');
    ledger.release({ txId: 'h1' });
    expect(ledger.balanceOf('m1').version).toBe(versions.at(-1));
  });
});

describe('Ledger: aggregates', () => {
  it('posts an aggregate sum and marks every covered transaction posted', () => {
    const { ledger } = setup(1000);
    const outcome = ledger.postAggregate({ id: 'a1', meansId: 'm1', payee: 'shop', sumMinor: 300, txIds: ['t1', 't2', 't3'], requestId: 'p1/r1' });
    expect(outcome.posted).toEqual(['t1', 't2', 't3']);
    expect(outcome.aggregate).toMatchObject({ sumMinor: 300, postedMinor: 300 });
    expect(ledger.postingOf('t2')).toMatchObject({ amountMinor: null, via: 'aggregate', aggregateId: 'a1' });
    expect(balance(ledger, payeeAccount('shop'))).toBe(300);
    // A grouped remittance of one of them later finds it posted.
    expect(ledger.postPayment(pay('t2', 100), 'remit').alreadyPosted).toBe(true);
    expect(balance(ledger, payeeAccount('shop'))).toBe(300);
  });

  it('posts only the remainder over transactions already posted singly', () => {
    const { ledger } = setup(1000);
    ledger.postPayment(pay('t1', 120), 'settle');
    const outcome = ledger.postAggregate({ id: 'a1', meansId: 'm1', payee: 'shop', sumMinor: 300, txIds: ['t1', 't2'], requestId: 'p1/r1' });
    expect(outcome).toMatchObject({ posted: ['t2'], alreadyPosted: ['t1'] });
    expect(outcome.aggregate?.postedMinor).toBe(180);
    expect(balance(ledger, payeeAccount('shop'))).toBe(300);
    expect(ledger.postingOf('t1')?.amountMinor).toBe(120);
  });

  it('refuses an aggregate whose sum is below what is already posted for its transactions, changing nothing', () => {
    const { ledger } = setup(1000);
    ledger.postPayment(pay('t1', 120), 'settle');
    const before = ledger.accounts();
    expect(codeOf(() => ledger.postAggregate({ id: 'a1', meansId: 'm1', payee: 'shop', sumMinor: 100, txIds: ['t1', 't2'], requestId: 'r' }))).toBe('aggregateMismatch');
    expect(ledger.postingOf('t2')).toBeUndefined();
    expect(ledger.aggregates()).toEqual([]);
    expect(ledger.accounts()).toEqual(before);
  });

  it('refuses an aggregate over a transaction posted for another payee', () => {
    const { ledger } = setup(1000);
    ledger.postPayment(pay('t1', 10, 'elsewhere'), 'settle');
    expect(codeOf(() => ledger.postAggregate({ id: 'a1', meansId: 'm1', payee: 'shop', sumMinor: 100, txIds: ['t1', 't2'], requestId: 'r' }))).toBe('aggregateMismatch');
  });

  it('counts a whole earlier aggregate inside a later one, and refuses one that cuts through it', () => {
    const { ledger } = setup(1000);
    ledger.postAggregate({ id: 'a1', meansId: 'm1', payee: 'shop', sumMinor: 200, txIds: ['t1', 't2'], requestId: 'r1' });
    expect(codeOf(() => ledger.postAggregate({ id: 'a2', meansId: 'm1', payee: 'shop', sumMinor: 300, txIds: ['t2', 't3'], requestId: 'r2' }))).toBe('aggregateMismatch');
    const outcome = ledger.postAggregate({ id: 'a3', meansId: 'm1', payee: 'shop', sumMinor: 260, txIds: ['t1', 't2', 't3'], requestId: 'r3' });
    expect(outcome).toMatchObject({ posted: ['t3'], alreadyPosted: ['t1', 't2'] });
    expect(outcome.aggregate?.postedMinor).toBe(60);
    expect(balance(ledger, payeeAccount('shop'))).toBe(260);
  });

  it('records nothing for an aggregate whose transactions are all posted and whose sum matches', () => {
    const { ledger } = setup(1000);
    ledger.postAggregate({ id: 'a1', meansId: 'm1', payee: 'shop', sumMinor: 200, txIds: ['t1', 't2'], requestId: 'r1' });
    const again = ledger.postAggregate({ id: 'a2', meansId: 'm1', payee: 'shop', sumMinor: 200, txIds: ['t1', 't2'], requestId: 'r2' });
    expect(again).toEqual({ aggregate: undefined, posted: [], alreadyPosted: ['t1', 't2'], shortfallMinor: 0 });
    expect(ledger.aggregates()).toHaveLength(1);
    expect(codeOf(() => ledger.postAggregate({ id: 'a4', meansId: 'm1', payee: 'shop', sumMinor: 201, txIds: ['t1', 't2'], requestId: 'r4' }))).toBe('aggregateMismatch');
    expect(balance(ledger, payeeAccount('shop'))).toBe(200);
  });

  it('answers the same aggregate id and contents with the original outcome, and refuses other contents', () => {
    const { ledger } = setup(1000);
    const input = { id: 'a1', meansId: 'm1', payee: 'shop', sumMinor: 200, txIds: ['t1', 't2'], requestId: 'r1' };
    const first = ledger.postAggregate(input);
    expect(ledger.postAggregate(input)).toEqual(first);
    expect(codeOf(() => ledger.postAggregate({ ...input, sumMinor: 201 }))).toBe('idConflict');
    expect(balance(ledger, payeeAccount('shop'))).toBe(200);
  });

  it('takes an aggregate beyond the means from the loss account', () => {
    const { ledger } = setup(50);
    const outcome = ledger.postAggregate({ id: 'a1', meansId: 'm1', payee: 'shop', sumMinor: 80, txIds: ['t1'], requestId: 'r1' });
    expect(outcome.shortfallMinor).toBe(30);
    expect(balance(ledger, payeeAccount('shop'))).toBe(80);
    expect(balance(ledger, LOSS_ACCOUNT)).toBe(-30);
  });
});

describe('Ledger: reversals of remote payments whose answer was lost', () => {
  const reverse = (ledger: Ledger, txId: string, proxyId = 'p1', requestId = `${proxyId}/v`) => ledger.reverse({ txId, proxyId, requestId });
  const everything = (ledger: Ledger) => structuredClone({ accounts: ledger.accounts(), postings: ledger.postings(), voids: ledger.voids(), holds: ledger.holdOf('h1') });

  it('releases an active hold, and a second reversal changes nothing', () => {
    const { ledger } = setup(1000);
    ledger.hold({ txId: 'h1', meansId: 'm1', payee: 'shop', amountMinor: 400, proxyId: 'p1' });
    expect(reverse(ledger, 'h1')).toEqual({ code: 'released', meansId: 'm1', already: false });
    expect(ledger.holdOf('h1')?.state).toBe('released');
    expect(ledger.balanceOf('m1').availableMinor).toBe(1000);
    const before = everything(ledger);
    expect(reverse(ledger, 'h1', 'p1', 'p1/v2')).toEqual({ code: 'released', meansId: 'm1', already: true });
    expect(everything(ledger)).toEqual(before);
  });

  it('pays a debit back from the payee to the means, marks it reversed, and does it once', () => {
    const { ledger } = setup(1000);
    ledger.debit(pay('d1', 300));
    expect(balance(ledger, payeeAccount('shop'))).toBe(300);
    expect(reverse(ledger, 'd1', 'p1', 'p1/v1')).toEqual({ code: 'reversed', meansId: 'm1', already: false });
    expect(balance(ledger, payeeAccount('shop'))).toBe(0);
    expect(balance(ledger, 'means:m1')).toBe(1000);
    expect(ledger.balanceOf('m1').availableMinor).toBe(1000);
    expect(ledger.postingOf('d1')).toMatchObject({ txId: 'd1', amountMinor: 300, via: 'debit', proxyId: 'p1', reversedBy: 'p1/v1' });
    expect(ledger.sumOfBalancesMinor()).toBe(0);
    const before = everything(ledger);
    expect(reverse(ledger, 'd1', 'p1', 'p1/v2')).toEqual({ code: 'reversed', meansId: 'm1', already: true });
    expect(everything(ledger)).toEqual(before);
  });

  it('refuses to pay a reversed debit again, and finds it posted when it comes as a proof', () => {
    const { ledger } = setup(1000);
    ledger.debit(pay('d1', 300));
    reverse(ledger, 'd1');
    const before = everything(ledger);
    expect(codeOf(() => ledger.debit(pay('d1', 300)))).toBe('voided');
    expect(ledger.postPayment(pay('d1', 300), 'settle').alreadyPosted).toBe(true);
    expect(everything(ledger)).toEqual(before);
  });

  it('voids a txId it never saw, so that the auth or debit arriving later is refused and changes nothing', () => {
    const { ledger } = setup(1000);
    expect(reverse(ledger, 'x1', 'p1', 'p1/v1')).toEqual({ code: 'voided', meansId: undefined, already: false });
    expect(ledger.voidOf('p1', 'x1')).toEqual({ proxyId: 'p1', txId: 'x1', requestId: 'p1/v1' });
    const before = everything(ledger);
    expect(codeOf(() => ledger.debit(pay('x1', 100)))).toBe('voided');
    expect(codeOf(() => ledger.hold({ txId: 'x1', meansId: 'm1', payee: 'shop', amountMinor: 100, proxyId: 'p1' }))).toBe('voided');
    expect(reverse(ledger, 'x1', 'p1', 'p1/v2')).toEqual({ code: 'voided', meansId: undefined, already: true });
    expect(everything(ledger)).toEqual(before);
    expect(ledger.voids()).toHaveLength(1);
  });

  it('lets a void bind only the proxy that made it', () => {
    const { ledger } = setup(1000);
    reverse(ledger, 'x1', 'p2');
    expect(ledger.debit({ ...pay('x1', 100), proxyId: 'p1' }).alreadyPosted).toBe(false);
    expect(balance(ledger, payeeAccount('shop'))).toBe(100);
  });

  it('refuses to reverse a captured hold or a local payment, changing nothing', () => {
    const { ledger } = setup(1000);
    ledger.hold({ txId: 'h1', meansId: 'm1', payee: 'shop', amountMinor: 400, proxyId: 'p1' });
    ledger.capture({ txId: 'h1', amountMinor: 400, requestId: 'p1/c1' });
    ledger.postPayment(pay('l1', 100), 'remit');
    ledger.postPayment(pay('l2', 100), 'settle');
    ledger.postAggregate({ id: 'a1', meansId: 'm1', payee: 'shop', sumMinor: 50, txIds: ['g1'], requestId: 'p1/r' });
    const before = everything(ledger);
    for (const txId of ['h1', 'l1', 'l2', 'g1']) expect(codeOf(() => reverse(ledger, txId)), txId).toBe('notReversible');
    expect(everything(ledger)).toEqual(before);
    expect(ledger.voids()).toEqual([]);
  });

  it('refuses a reversal asked by a proxy that did not make the payment', () => {
    const { ledger } = setup(1000);
    ledger.hold({ txId: 'h1', meansId: 'm1', payee: 'shop', amountMinor: 400, proxyId: 'p1' });
    ledger.debit(pay('d1', 100));
    const before = everything(ledger);
    expect(codeOf(() => reverse(ledger, 'h1', 'p2'))).toBe('senderMismatch');
    expect(codeOf(() => reverse(ledger, 'd1', 'p2'))).toBe('senderMismatch');
    expect(everything(ledger)).toEqual(before);
  });
});
