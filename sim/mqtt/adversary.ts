// Goal: the adversarial faults of an mqtt-mode run, for real: forged signatures, replayed and altered
// remittances, malformed payloads and a device publishing on another's topic, each sent through the broker as a
// real MQTT client, and each checked at the end to have been refused and to have changed nothing [INV-6].
// Method: the coordinator holds the run's secret and seed, so it can connect as any identity (an attacker who
// stole a device's credentials: the connection takes the device's session over, and the device reconnects)
// and sign with any proxy's key (a replay by a device that really sent the remittance before). Each injection
// connects, subscribes to the identity's response topic, publishes once, and waits briefly for SD's answer or
// for the broker to close the connection (aedes' way to refuse a publish; Mosquitto drops it silently). What was
// sent is kept, so `check` can look each one up on the ledgers once the servers have stopped.

import mqtt, { type MqttClient } from 'mqtt';
import { signRequest } from '../../machines/domain/requests.ts';
import { keyFromSeed } from '../../machines/domain/signature.ts';
import { shardOf } from '../../machines/link.ts';
import type { DebitRequest, Proof, RemitRequest, ServerResult } from '../../machines/messages.ts';
import type { Ledger } from '../../machines/domain/ledger.ts';
import { credentialsFor } from '../../broker/credentials.ts';
import { requestTopic, responseTopic, type ClientIdentity } from '../../broker/topics.ts';
import { checkInjectionRefused, type AdversarialKind, type Injection } from '../check/inv6Signatures.ts';
import type { InvariantBook } from '../check/invariantBook.ts';
import type { Prng } from '../core/prng.ts';
import type { Scenario } from '../scenario/types.ts';
import { deviceKey } from '../core/fleetKeys.ts';
import { meansIdOf, terminalId } from '../core/population.ts';

/** How long (real ms) an injection waits for SD's answer before leaving the verdict to the ledger. */
const ANSWER_WAIT_REAL_MS = 400;
const CONNECT_ATTEMPTS = 20;
const CONNECT_RETRY_REAL_MS = 250;

export type { AdversarialKind, Injection } from '../check/inv6Signatures.ts';

export interface AdversaryContext {
  scenario: Scenario;
  brokerUrl(): string;
  secret: string;
  prng: Prng;
  now(): number;
  /** A recent remittance of some terminal, with the proofs it carried, for a replay. */
  remittanceSample(): { terminalId: string; proofs: Proof[] } | undefined;
}

export class Adversary {
  readonly injections: Injection[] = [];
  private seq = 0;

  constructor(private readonly context: AdversaryContext) {}

  async inject(kind: AdversarialKind, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      switch (kind) {
        case 'forgedSignature':
          await this.forgedDebit();
          break;
        case 'replayedRemittance':
          await this.replay();
          break;
        case 'malformedPayload':
          await this.malformed();
          break;
        case 'wrongTopic':
          await this.wrongTopic();
          break;
      }
    }
  }

  private randomTerminal(): number {
    return this.context.prng.int(0, this.context.scenario.population.terminals - 1);
  }

  /** A debit in a real proxy's name, signed with a key that is not the proxy's. */
  private async forgedDebit(): Promise<void> {
    const index = this.randomTerminal();
    const victim = terminalId(index);
    const n = ++this.seq;
    const forger = keyFromSeed(this.context.scenario.crypto, this.context.prng.fork(`forger:${n}`).bytes32());
    const meansId = meansIdOf(index);
    const claim = { txId: `forged.${n}`, amountMinor: 100, payee: 'merchant-forger', timeMs: this.context.now(), counter: 1_000_000 + n, proxyId: victim, meansId };
    const request = signRequest<DebitRequest>(forger, { kind: 'debit', reqId: `forged.${n}`, from: victim, claim });
    const topic = requestTopic(this.shardOfMeans(meansId), { role: 'terminal', id: victim });
    await this.send({ kind: 'forgedSignature', reqId: request.reqId, meansId, txIds: [claim.txId], replayed: [] }, { role: 'terminal', id: victim }, topic, JSON.stringify(request));
  }

  /** A remittance a proxy sent earlier, sent again under a new request id, and once more with an amount raised. */
  private async replay(): Promise<void> {
    const sample = this.context.remittanceSample();
    if (!sample || sample.proofs.length === 0) {
      this.injections.push({ kind: 'replayedRemittance', reqId: `replay.none.${++this.seq}`, meansId: '', txIds: [], replayed: [], outcome: 'notSent', notSentBecause: 'no remittance seen yet' });
      return;
    }
    const n = ++this.seq;
    const key = deviceKey(this.context.scenario, sample.terminalId);
    const identity: ClientIdentity = { role: 'terminal', id: sample.terminalId };
    const topic = requestTopic(this.shardOfMeans(sample.proofs[0]!.meansId), identity);
    const txIds = sample.proofs.map((p) => p.txId);
    const replayed = signRequest<RemitRequest>(key, { kind: 'remit', mode: 'grouped', reqId: `replay.${n}`, from: sample.terminalId, transactions: sample.proofs });
    await this.send({ kind: 'replayedRemittance', reqId: replayed.reqId, meansId: sample.proofs[0]!.meansId, txIds: [], replayed: txIds }, identity, topic, JSON.stringify(replayed));
    const [first, ...rest] = sample.proofs;
    const altered = signRequest<RemitRequest>(key, {
      kind: 'remit',
      mode: 'grouped',
      reqId: `replay.${n}.altered`,
      from: sample.terminalId,
      transactions: [{ ...first!, amountMinor: first!.amountMinor + 1 }, ...rest],
    });
    await this.send({ kind: 'replayedRemittance', reqId: altered.reqId, meansId: sample.proofs[0]!.meansId, txIds: [], replayed: txIds }, identity, topic, JSON.stringify(altered));
  }

  /** A request whose amount is not an amount. */
  private async malformed(): Promise<void> {
    const index = this.randomTerminal();
    const victim = terminalId(index);
    const n = ++this.seq;
    const reqId = `malformed.${n}`;
    const payload = { kind: 'debit', reqId, from: victim, sig: 'x', claim: { txId: reqId, amountMinor: -5, payee: '', timeMs: 0, counter: -1, proxyId: victim, meansId: meansIdOf(index) } };
    const topic = requestTopic(this.shardOfMeans(meansIdOf(index)), { role: 'terminal', id: victim });
    await this.send({ kind: 'malformedPayload', reqId, meansId: meansIdOf(index), txIds: [reqId], replayed: [] }, { role: 'terminal', id: victim }, topic, JSON.stringify(payload));
  }

  /** One terminal publishes a debit on another terminal's request topic, signed with its own key. */
  private async wrongTopic(): Promise<void> {
    const speakerIndex = this.randomTerminal();
    let victimIndex = this.randomTerminal();
    if (victimIndex === speakerIndex) victimIndex = (victimIndex + 1) % this.context.scenario.population.terminals;
    const speaker = terminalId(speakerIndex);
    const victim = terminalId(victimIndex);
    const n = ++this.seq;
    const meansId = meansIdOf(victimIndex);
    const claim = { txId: `impersonation.${n}`, amountMinor: 50, payee: `merchant-${speaker}`, timeMs: this.context.now(), counter: 2_000_000 + n, proxyId: victim, meansId };
    const request = signRequest<DebitRequest>(deviceKey(this.context.scenario, speaker), { kind: 'debit', reqId: `impersonation.${n}`, from: victim, claim });
    const topic = requestTopic(this.shardOfMeans(meansId), { role: 'terminal', id: victim });
    await this.send({ kind: 'wrongTopic', reqId: request.reqId, meansId, txIds: [claim.txId], replayed: [] }, { role: 'terminal', id: speaker }, topic, JSON.stringify(request));
  }

  private shardOfMeans(meansId: string): number {
    return shardOf(meansId, this.context.scenario.population.shards);
  }

  private async send(base: Omit<Injection, 'outcome'>, identity: ClientIdentity, topic: string, payload: string): Promise<void> {
    const injection: Injection = { ...base, outcome: 'notSent' };
    this.injections.push(injection);
    const { username, password } = credentialsFor(this.context.secret, identity);
    let client: MqttClient | undefined;
    // An attacker tries again while the broker is restarting; after that the message is not sent.
    for (let attempt = 1; !client; attempt++) {
      try {
        client = await mqtt.connectAsync(this.context.brokerUrl(), { clientId: username, username, password, protocolVersion: 4, clean: true, reconnectPeriod: 0, connectTimeout: 2_000 });
      } catch (error) {
        if (attempt >= CONNECT_ATTEMPTS) {
          injection.notSentBecause = `cannot connect as ${username}: ${(error as Error).message}`;
          return;
        }
        await new Promise((r) => setTimeout(r, CONNECT_RETRY_REAL_MS));
      }
    }
    const c = client;
    const respTopic = responseTopic(identity.role === 'pos' ? 'pos' : 'terminal', identity.id);
    await new Promise<void>((resolve) => {
      const done = (outcome: Injection['outcome'], answer?: ServerResult): void => {
        if (injection.outcome !== 'notSent' && injection.outcome !== 'unanswered') return;
        injection.outcome = outcome;
        if (answer) injection.answer = answer;
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => done('unanswered'), ANSWER_WAIT_REAL_MS);
      c.on('close', () => done('closedByBroker'));
      c.on('error', () => undefined);
      c.on('message', (_topic, buffer) => {
        try {
          const message = JSON.parse(buffer.toString()) as ServerResult;
          if (message.kind === 'result' && message.reqId === base.reqId) done('answered', message);
        } catch {
          // Not for us.
        }
      });
      c.subscribe(respTopic, { qos: 1 }, () => {
        c.publish(topic, payload, { qos: 1 }, () => undefined);
      });
    });
    c.end(true);
  }

  /** [INV-6 signatures] Each message sent was refused and changed nothing (sim/check/inv6Signatures.ts). */
  check(book: InvariantBook, ledgerOfMeans: (meansId: string) => Ledger): void {
    for (const injection of this.injections) checkInjectionRefused(book, injection, ledgerOfMeans);
  }
}
