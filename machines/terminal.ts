// Goal: TM, the mobile terminal — the home of the payment proxy. Its applications' paid actions (a game level,
// a pay-per-view film, a shop's telepayment) become payment orders; its radio coverage is passed to the proxy's
// link; its secure element checks the proxy's code signature at install and seals or opens the strongbox when the
// SIM moves to another terminal.
// Method: a small machine that invokes the proxy machine as its one long-lived child and routes events between
// the apps, the user and the proxy. What a person would see (receipts, confirmation prompts) is emitted for the
// harness, which plays the user and the apps.

import { emit, enqueueActions, sendTo, setup } from 'xstate';
import { proxyMachine, type ProxyInput } from './proxy.ts';
import type { PaymentOrder, ProxyResponse, RemitNow } from './messages.ts';
import type { ConfirmationKind } from './domain/confirmation.ts';
import { verifyFields, type SignatureScheme } from './domain/signature.ts';
import { openStrongbox, sealStrongbox, type Strongbox } from './domain/strongbox.ts';
import { assertProxyState, type ProxyState } from './domain/proxyRules.ts';

/** The proxy's code as installed on the SIM, with the operator's signature over its digest. */
export interface ProxyCode {
  digest: string;
  signature: string;
}

export interface SecureElement {
  /** The operator's public key: the proxy's code must carry its signature. */
  operatorPublicKey: string;
  scheme: SignatureScheme;
  proxyCode: ProxyCode;
}

export interface TerminalInput {
  terminalId: string;
  secureElement: SecureElement;
  proxy: ProxyInput;
  /** A SIM moved in from another terminal: the proxy's state comes out of this strongbox. */
  strongbox?: { box: Strongbox; password: string };
  /** How many receipts each app keeps (the harness keeps the full record). */
  receiptsKept?: number;
}

export interface TerminalContext {
  terminalId: string;
  proxyInput: ProxyInput;
  receipts: Array<{ appId: string; response: ProxyResponse }>;
  receiptsKept: number;
  /** Why the terminal refuses to pay, if it does (untrusted proxy code, unreadable strongbox). */
  refusal?: string;
}

export type TerminalEvent =
  | { type: 'app.pay'; order: PaymentOrder }
  | { type: 'user.answer'; orderId: string; approved: boolean; pin?: string }
  | { type: 'coverage'; inCoverage: boolean }
  /** SD's signed request to remit now, relayed by an app's server; the proxy checks the signature. */
  | { type: 'remit.now'; request: RemitNow }
  | { type: 'strongbox.export'; password: string; salt: Uint8Array; iv: Uint8Array }
  | { type: 'proxy.response'; appId: string; order: PaymentOrder; response: ProxyResponse }
  | { type: 'proxy.confirm'; orderId: string; kind: ConfirmationKind; amountMinor: number; payee: string };

export type TerminalEmitted =
  | { type: 'terminal.receipt'; terminalId: string; appId: string; order: PaymentOrder; response: ProxyResponse }
  | { type: 'terminal.confirm'; terminalId: string; orderId: string; kind: ConfirmationKind; amountMinor: number; payee: string }
  | { type: 'terminal.strongbox'; terminalId: string; box: Strongbox }
  | { type: 'terminal.refused'; terminalId: string; reason: string };

/** The fields the operator signs over the proxy's code. */
export function proxyCodeFields(digest: string): readonly string[] {
  return ['proxy-code.v1', digest];
}

function openedProxyState(input: TerminalInput): { restored?: ProxyState; refusal?: string } {
  if (!input.strongbox) return { restored: input.proxy.restored };
  try {
    const state = openStrongbox(input.strongbox.box, input.strongbox.password);
    assertProxyState(state);
    return { restored: state };
  } catch (error) {
    return { refusal: `strongbox: ${(error as Error).message}` };
  }
}

export const terminalMachine = setup({
  types: {
    context: {} as TerminalContext,
    events: {} as TerminalEvent,
    input: {} as TerminalInput,
    emitted: {} as TerminalEmitted,
  },
  actors: { proxy: proxyMachine },
  guards: {
    isProxyTrusted: ({ context }) => context.refusal === undefined,
  },
  actions: {
    forwardOrder: sendTo('proxy', ({ event }) => ({ type: 'order' as const, order: (event as { order: PaymentOrder }).order })),
    forwardAnswer: sendTo('proxy', ({ event }) => {
      const answer = event as { orderId: string; approved: boolean; pin?: string };
      return { type: 'confirm.answer' as const, orderId: answer.orderId, approved: answer.approved, pin: answer.pin };
    }),
    forwardCoverage: sendTo('proxy', ({ event }) => ({ type: 'coverage' as const, inCoverage: (event as { inCoverage: boolean }).inCoverage })),
    forwardRemitNow: sendTo('proxy', ({ event }) => ({ type: 'remit.now' as const, request: (event as { request: RemitNow }).request })),
    keepReceipt: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'proxy.response') return;
      // The kept receipts and the new one, copied once (not appended to a full copy, then sliced again).
      const kept = context.receiptsKept;
      const receipt = { appId: event.appId, response: event.response };
      let receipts: TerminalContext['receipts'];
      if (kept > 0) {
        receipts = context.receipts.slice(Math.max(0, context.receipts.length + 1 - kept));
        receipts.push(receipt);
      } else {
        // `slice(-0)` keeps everything: a limit of 0 (or less) behaves as it always did.
        const all = [...context.receipts, receipt];
        receipts = all.length > kept ? all.slice(-kept) : all;
      }
      enqueue.assign({ receipts });
      enqueue.emit({ type: 'terminal.receipt', terminalId: context.terminalId, appId: event.appId, order: event.order, response: event.response });
    }),
    askUser: emit(({ context, event }) => {
      const ask = event as Extract<TerminalEvent, { type: 'proxy.confirm' }>;
      return { type: 'terminal.confirm' as const, terminalId: context.terminalId, orderId: ask.orderId, kind: ask.kind, amountMinor: ask.amountMinor, payee: ask.payee };
    }),
    /** Seals the proxy's persisted state for a move of the SIM to another terminal. */
    sealStrongbox: enqueueActions(({ context, event, enqueue, self }) => {
      if (event.type !== 'strongbox.export') return;
      const proxy = self.getSnapshot().children.proxy;
      const state = proxy?.getSnapshot().context.state as ProxyState | undefined;
      if (!state) return;
      enqueue.emit({ type: 'terminal.strongbox', terminalId: context.terminalId, box: sealStrongbox(state, event.password, event.salt, event.iv) });
    }),
    refuseOrder: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'app.pay') return;
      const response: ProxyResponse = { orderId: event.order.orderId, ok: false, reason: context.refusal ?? 'terminalRefused' };
      const appId = event.order.source.kind === 'app' ? event.order.source.appId : 'pos';
      enqueue.emit({ type: 'terminal.receipt', terminalId: context.terminalId, appId, order: event.order, response });
    }),
    reportRefusal: emit(({ context }) => ({ type: 'terminal.refused' as const, terminalId: context.terminalId, reason: context.refusal ?? 'unknown' })),
  },
}).createMachine({
  id: 'terminal',
  context: ({ input }) => {
    // [INV-6 signatures] the secure element runs only a proxy whose code the operator signed.
    const se = input.secureElement;
    const trusted = verifyFields(se.scheme, se.operatorPublicKey, proxyCodeFields(se.proxyCode.digest), se.proxyCode.signature);
    const opened = openedProxyState(input);
    const refusal = !trusted ? 'proxyCodeNotTrusted' : opened.refusal;
    return {
      terminalId: input.terminalId,
      proxyInput: { ...input.proxy, restored: opened.restored },
      receipts: [],
      receiptsKept: input.receiptsKept ?? 8,
      refusal,
    };
  },
  initial: 'installing',
  states: {
    installing: {
      always: [{ guard: 'isProxyTrusted', target: 'running' }, { target: 'refusing' }],
    },
    running: {
      invoke: { src: 'proxy', id: 'proxy', input: ({ context }) => context.proxyInput },
      on: {
        'app.pay': { actions: 'forwardOrder' },
        'user.answer': { actions: 'forwardAnswer' },
        coverage: { actions: 'forwardCoverage' },
        'remit.now': { actions: 'forwardRemitNow' },
        'strongbox.export': { actions: 'sealStrongbox' },
        'proxy.response': { actions: 'keepReceipt' },
        'proxy.confirm': { actions: 'askUser' },
      },
    },
    refusing: {
      entry: 'reportRefusal',
      on: { 'app.pay': { actions: 'refuseOrder' } },
    },
  },
});


