// Goal: SD, one payment-server process serving a range of shards: it answers authorisations, debits,
// captures, releases, remittances, syncs and POS settlements, each with a signed result.
// Method: requests arrive from the `link` child; each is handed to the `ledger` child, which applies the
// rules of domain/serverRules.ts to a durable ledger and answers only after the write is committed; the
// result then goes back over the link to whoever asked. The ledger is a child actor because its storage is
// I/O in real runs (SQLite): `createLedgerActor(ledger, schedule)` binds it to a Ledger over any store, in
// memory for the simulator or on disk for mqtt mode, and the schedule says when each request is applied.

import { emit, enqueueActions, fromCallback, setup } from 'xstate';
import type { LinkCommand, LinkEvent, LinkInput } from './link.ts';
import type { RemitNow, ServerRequest, ServerResult } from './messages.ts';
import { handleRequest } from './domain/serverRules.ts';
import { signRemitNow } from './domain/requests.ts';
import type { Ledger } from './domain/ledger.ts';
import type { SignatureScheme, SigningKey } from './domain/signature.ts';

export interface ServerInput {
  serverId: string;
  shards: number[];
  key: SigningKey;
  scheme: SignatureScheme;
  /** Registered public keys of proxies and POS units. */
  publicKeyOf: (id: string) => string | undefined;
  now: () => number;
}

export interface LedgerActorInput {
  key: SigningKey;
  scheme: SignatureScheme;
  publicKeyOf: (id: string) => string | undefined;
  now: () => number;
}

export type LedgerCommand = { type: 'ledger.apply'; request: ServerRequest };
export type LedgerEvent = { type: 'ledger.result'; request: ServerRequest; result: ServerResult };

export type ServerEvent = LinkEvent | LedgerEvent | { type: 'server.remitNow'; proxyId: string };

export type ServerEmitted =
  | { type: 'server.handled'; request: ServerRequest; result: ServerResult; atMs: number }
  | { type: 'server.rejected'; reason: string };

export interface ServerContext {
  input: ServerInput;
  remitNowSeq: number;
}

/**
 * One request handed to a ledger child. `apply()` runs the rules of domain/serverRules.ts on the ledger with
 * the child's keys and clock — the write and its stored answer in one store transaction — and returns the
 * answer; `answer(event)` hands it to the server, which sends it on. A child calls `answer` only once the write
 * is committed: an answer that left SD is on the ledger [INV-4 nothing lost].
 */
export interface LedgerWork {
  command: LedgerCommand;
  apply(): LedgerEvent;
  answer(event: LedgerEvent): void;
}

/**
 * When a ledger child applies the requests it receives. Called once per child actor (a restarted server gets
 * a fresh one, so a crash loses what it held): `take` gets each request as it arrives, `stop` runs when the
 * child stops.
 */
export type LedgerSchedule = () => { take(work: LedgerWork): void; stop?(): void };

/** Applies each request as it arrives and answers at once: the store's transaction commits before `apply` returns. */
export const applyAtOnce: LedgerSchedule = () => ({ take: (work) => work.answer(work.apply()) });

/**
 * The ledger child over a given Ledger: the one place a child calls `handleRequest`. `schedule` says when each
 * request is applied and answered — at once (the default), after a service time, in group-committed batches,
 * or when a test commits it.
 */
export function createLedgerActor(ledger: Ledger, schedule: LedgerSchedule = applyAtOnce) {
  return fromCallback<LedgerCommand, LedgerActorInput>(({ input, receive, sendBack }) => {
    const scheduler = schedule();
    receive((command) =>
      scheduler.take({
        command,
        apply: () => ({
          type: 'ledger.result',
          request: command.request,
          result: handleRequest(ledger, command.request, { scheme: input.scheme, serverKey: input.key, publicKeyOf: input.publicKeyOf, nowMs: input.now() }),
        }),
        answer: (event) => sendBack(event),
      }),
    );
    return () => scheduler.stop?.();
  });
}

const disconnectedLink = fromCallback<LinkCommand, LinkInput>(() => undefined);
const noLedger = fromCallback<LedgerCommand, LedgerActorInput>(() => {
  throw new Error('server: no ledger provided; use serverMachine.provide({ actors: { ledger: createLedgerActor(ledger) } })');
});

function isRequest(message: { kind: string }): message is ServerRequest {
  return message.kind !== 'result' && message.kind !== 'remitNow';
}

export const serverMachine = setup({
  types: { context: {} as ServerContext, events: {} as ServerEvent, input: {} as ServerInput, emitted: {} as ServerEmitted },
  actors: { link: disconnectedLink, ledger: noLedger },
  actions: {
    applyRequest: enqueueActions(({ event, enqueue }) => {
      if (event.type !== 'link.message') return;
      if (!isRequest(event.message)) {
        enqueue.emit({ type: 'server.rejected', reason: `unexpectedKind:${event.message.kind}` });
        return;
      }
      enqueue.sendTo('ledger', { type: 'ledger.apply', request: event.message } satisfies LedgerCommand);
    }),
    /** The result goes out only now, after the ledger committed it. */
    sendResult: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'ledger.result') return;
      enqueue.sendTo('link', { type: 'link.send', to: event.result.to, message: event.result } as LinkCommand);
      enqueue.emit({ type: 'server.handled', request: event.request, result: event.result, atMs: context.input.now() });
    }),
    askRemittance: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'server.remitNow') return;
      // Signed, so a proxy can tell SD's request from anyone's [INV-6 signatures].
      const message: RemitNow = signRemitNow(context.input.key, {
        reqId: `${context.input.serverId}:n${context.remitNowSeq}`,
        from: context.input.serverId,
        to: event.proxyId,
        issuedAtMs: context.input.now(),
      });
      enqueue.assign({ remitNowSeq: context.remitNowSeq + 1 });
      enqueue.sendTo('link', { type: 'link.send', to: event.proxyId, message } as LinkCommand);
    }),
    reportRejected: emit(({ event }) => ({ type: 'server.rejected' as const, reason: (event as { reason: string }).reason })),
  },
}).createMachine({
  id: 'server',
  context: ({ input }) => ({ input, remitNowSeq: 1 }),
  invoke: [
    { src: 'link', id: 'link', input: ({ context }) => ({ endpointId: context.input.serverId, role: 'server' as const, shards: context.input.shards, inCoverage: true }) },
    {
      src: 'ledger',
      id: 'ledger',
      input: ({ context }) => ({ key: context.input.key, scheme: context.input.scheme, publicKeyOf: context.input.publicKeyOf, now: context.input.now }),
    },
  ],
  initial: 'serving',
  states: {
    serving: {
      on: {
        'link.message': { actions: 'applyRequest' },
        'ledger.result': { actions: 'sendResult' },
        'server.remitNow': { actions: 'askRemittance' },
        'link.rejected': { actions: 'reportRejected' },
      },
    },
  },
});


