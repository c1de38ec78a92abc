// Goal: the harness's side of spending through other points of issue in mqtt mode: every payment a worker's
// workload drew for a shared means (a web shop debiting SD directly) reaches the payment server that owns the
// means' shard and is applied there exactly once, and the run counts what was applied and what was refused.
// Method: one MQTT client with the harness's identity publishes each spend as a `spendElsewhere` control command
// on `pf/v1/ctl/sd/{shard}/cmd` (QoS 1) and listens on `pf/v1/ctl/ack/+` for the servers' answers. A spend
// stays outstanding until an answer for it arrives from a server of its shard; one unanswered after
// `resendAfterRealMs` (its server was killed, paused or restarting, or the broker was) is published again, and
// everything outstanding is published again on each reconnect. The server applies a spend idempotently by its
// transferId and stores its refusals, so resends cost nothing and the first answer counted is the only one.
// Answers are checked with `decodeControl`; one that is malformed, from a server of another shard or for no
// outstanding spend is counted as rejected and changes nothing. Time is the caller's real-time clock.

import mqtt, { type MqttClient } from 'mqtt';
import { shardOf } from '../../machines/link.ts';
import { credentialsFor } from '../../broker/credentials.ts';
import { CONTROL_ACK_FILTER, parseTopic, serverControlTopic, type ClientIdentity, type SpendElsewhereCommand } from '../../broker/topics.ts';
import { decodeControl } from '../../broker/validate.ts';
import type { ElsewhereSpend } from './protocol.ts';

const HARNESS: ClientIdentity = { role: 'harness', id: 'harness' };

export interface ElsewhereSenderOptions {
  brokerUrl: string;
  secret: string;
  /** The scenario's shard count: a means' shard picks the server it goes to. */
  shardCount: number;
  /** Real-time clock, in milliseconds. */
  nowMs(): number;
  /** An answer is awaited this long (real ms) before the spend is published again. */
  resendAfterRealMs?: number;
  log?(line: string): void;
}

/** What the sender counted; `applied` and `refused` are the run's `workload.elsewhere` and `elsewhereRefused`. */
export interface ElsewhereCounts {
  sent: number;
  resent: number;
  applied: number;
  refused: number;
  refusedByCode: Record<string, number>;
  /** Answers refused by `decodeControl` or naming no outstanding spend of the answering server, by code. */
  rejected: Record<string, number>;
  /** Second answers to a spend already answered (a resend crossed the first answer). */
  duplicateAnswers: number;
}

interface Outstanding {
  command: SpendElsewhereCommand;
  shard: number;
  sentAtMs: number;
}

function bump(record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1;
}

export class ElsewhereSender {
  readonly counts: ElsewhereCounts = { sent: 0, resent: 0, applied: 0, refused: 0, refusedByCode: {}, rejected: {}, duplicateAnswers: 0 };
  private readonly outstanding = new Map<string, Outstanding>();
  private readonly answered = new Set<string>();
  private client: MqttClient | undefined;
  private up = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly resendAfterRealMs: number;

  constructor(private readonly options: ElsewhereSenderOptions) {
    this.resendAfterRealMs = options.resendAfterRealMs ?? 1_000;
  }

  /** Spends sent and not answered yet. */
  get pending(): number {
    return this.outstanding.size;
  }

  /** Connects (mqtt.js reconnects by itself after a broker restart); resolves once answers can arrive. */
  async start(): Promise<void> {
    const { username, password } = credentialsFor(this.options.secret, HARNESS);
    const client = mqtt.connect(this.options.brokerUrl, {
      clientId: username,
      username,
      password,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 250,
      connectTimeout: 5_000,
    });
    this.client = client;
    const subscribed = new Promise<void>((resolve) => {
      client.on('connect', () => {
        // A clean session forgets its subscriptions: subscribe on every connection, then resend what is open.
        client.subscribe(CONTROL_ACK_FILTER, { qos: 1 }, (error, granted) => {
          if (error || !granted || granted.some((g) => g.qos === 128)) {
            this.options.log?.(`  spends elsewhere: subscription to ${CONTROL_ACK_FILTER} refused (${error?.message ?? 'SUBACK 0x80'})`);
            return;
          }
          this.up = true;
          resolve();
          for (const entry of this.outstanding.values()) this.publish(entry, true);
        });
      });
    });
    client.on('close', () => (this.up = false));
    client.on('error', () => undefined);
    client.on('message', (topic, payload) => this.onAnswer(topic, payload));
    this.timer = setInterval(() => this.resendOverdue(), Math.max(10, Math.floor(this.resendAfterRealMs / 2)));
    await subscribed;
  }

  /** Hands one spend to the server of its shard; it stays outstanding until that server answers. */
  send(spend: ElsewhereSpend): void {
    if (this.outstanding.has(spend.transferId) || this.answered.has(spend.transferId)) return;
    const command: SpendElsewhereCommand = { kind: 'spendElsewhere', transferId: spend.transferId, meansId: spend.meansId, payee: spend.payee, amountMinor: spend.amountMinor };
    const entry: Outstanding = { command, shard: shardOf(spend.meansId, this.options.shardCount), sentAtMs: this.options.nowMs() };
    this.outstanding.set(spend.transferId, entry);
    this.counts.sent++;
    this.publish(entry, false);
  }

  private publish(entry: Outstanding, resend: boolean): void {
    entry.sentAtMs = this.options.nowMs();
    // While down nothing is published; the reconnect publishes everything outstanding.
    if (!this.up || !this.client) return;
    if (resend) this.counts.resent++;
    this.client.publish(serverControlTopic(entry.shard), JSON.stringify(entry.command), { qos: 1 }, () => undefined);
  }

  private resendOverdue(): void {
    const now = this.options.nowMs();
    for (const entry of this.outstanding.values()) if (now - entry.sentAtMs >= this.resendAfterRealMs) this.publish(entry, true);
  }

  private onAnswer(topic: string, payload: Buffer): void {
    const route = parseTopic(topic);
    // The ACL lets a server publish answers only under its own name, so the topic names the publisher.
    const publisher = route?.family === 'ctlAck' ? { role: route.sender.role, id: route.sender.id } : { role: 'server' as const };
    const decoded = decodeControl(payload, topic, publisher);
    if (!decoded.ok) {
      bump(this.counts.rejected, decoded.code);
      this.options.log?.(`  spends elsewhere: answer on ${topic} refused: ${decoded.reason}`);
      return;
    }
    const answer = decoded.message;
    if (answer.kind !== 'spendElsewhereResult' || route?.family !== 'ctlAck') return;
    const entry = this.outstanding.get(answer.transferId);
    if (!entry) {
      if (this.answered.has(answer.transferId)) this.counts.duplicateAnswers++;
      else bump(this.counts.rejected, 'notOutstanding');
      return;
    }
    if (!(route.sender.shards ?? []).includes(entry.shard) || answer.meansId !== entry.command.meansId) {
      bump(this.counts.rejected, 'wrongServer');
      this.options.log?.(`  spends elsewhere: answer for ${answer.transferId} from ${route.sender.id} refused: it does not serve shard ${entry.shard} of ${entry.command.meansId}`);
      return;
    }
    this.outstanding.delete(answer.transferId);
    this.answered.add(answer.transferId);
    if (answer.outcome === 'applied') {
      this.counts.applied++;
    } else {
      // As in the virtual mode, a web shop's payment refused (for insufficient funds, mostly) is an ordinary event.
      this.counts.refused++;
      bump(this.counts.refusedByCode, answer.code ?? 'unknown');
    }
  }

  /** Resolves once nothing is outstanding, or after `realMs` (resolving false). */
  async settled(realMs: number): Promise<boolean> {
    const until = this.options.nowMs() + realMs;
    while (this.outstanding.size > 0 && this.options.nowMs() < until) await new Promise((r) => setTimeout(r, 20));
    return this.outstanding.size === 0;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.up = false;
    const client = this.client;
    this.client = undefined;
    await client?.endAsync(true);
  }
}
