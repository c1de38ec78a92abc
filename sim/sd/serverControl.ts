// Goal: a payment-server process's side of the harness control messages: a payment made through another point
// of issue of a shared means (a web shop) is debited on the ledger this process owns, in its own transaction,
// exactly once whatever the harness resends, and answered `applied` or `refused` — so the proxies' local
// balances really can have been spent elsewhere in mqtt mode, the case MTDL < SL and INV-1/INV-3 guard.
// Method: the link hands over what arrives on the server's `pf/v1/ctl/sd/{shard}/cmd` topics (broker/mqttLink.ts
// `control`). Each payload is checked with `decodeControl`: a malformed or forged one is counted, logged with its
// reason and changes nothing (no answer either: it names nothing to answer). A well-formed spend for a means
// outside the topic's shard is refused with `wrongShard`. The spends of one event-loop turn are applied in one
// store transaction — each spend's own transaction becomes a savepoint, so a refusal rolls back only that spend
// — and answered only after that commit is durable (after `syncCommitted` when the store defers its fsyncs), the
// group-commit rule of serverProcess.ts. better-sqlite3 is synchronous and this process is the ledger's only
// writer, so these transactions never interleave with the requests' batches. Idempotence by `transferId`: the ledger returns the original transfer for a repeat
// [INV-4 nothing twice], and a refusal (other than an id conflict) is stored in the file's meta table under
// `elsewhereRefused:{transferId}` in the same commit, so a spend resent after a lost answer or a crash gets
// the same answer and cannot flip to applied when funds come back later.

import { Ledger } from '../../machines/domain/ledger.ts';
import { DomainError } from '../../machines/domain/money.ts';
import { shardOf } from '../../machines/link.ts';
import type { ControlChannel } from '../../broker/linkOptions.ts';
import { controlAckTopic, parseTopic, type ClientIdentity, type SpendElsewhereAnswer, type SpendElsewhereCommand } from '../../broker/topics.ts';
import { decodeControl } from '../../broker/validate.ts';
import type { SyncCommitted } from './groupCommit.ts';

/** Where a server keeps small facts of its own beside the ledger (SqliteLedgerStore's meta table). */
export interface MetaStore {
  getMeta(key: string): string | undefined;
  putMeta(key: string, value: string): void;
}

export interface ServerControlOptions {
  ledger: Ledger;
  meta: MetaStore;
  /** The server's identity: its shards, and the username its answers are published under. */
  identity: ClientIdentity;
  shardCount: number;
  /** A failure that is not a refusal (the ledger file failing): the batch was rolled back and not answered. */
  onFailure(error: unknown): void;
  /** When the store defers its fsyncs (groupCommit.ts): answers go out only once it says their commit is durable. */
  syncCommitted?: SyncCommitted;
  log?(line: string): void;
}

/** What the control channel counted. */
export interface ServerControlCounts {
  /** Answers `applied`, resends of an applied spend included. */
  applied: number;
  /** Answers `refused`, by code. */
  refused: Record<string, number>;
  /** Payloads refused by `decodeControl`, by code: nothing changed, nothing answered. */
  rejected: Record<string, number>;
  /** Answers not published because the link was down (the harness resends). */
  unsent: number;
}

const REFUSAL_KEY = 'elsewhereRefused:';

function bump(record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1;
}

/** Applies one spend inside the caller's transaction; throws only for failures that are not refusals. */
function applySpend(options: ServerControlOptions, shard: number, command: SpendElsewhereCommand): SpendElsewhereAnswer {
  const { transferId, meansId } = command;
  const answer = (outcome: 'applied' | 'refused', code?: string, reason?: string): SpendElsewhereAnswer => ({
    kind: 'spendElsewhereResult',
    transferId,
    meansId,
    outcome,
    ...(code === undefined ? {} : { code }),
    ...(reason === undefined ? {} : { reason: reason.slice(0, 1000) }),
  });
  if (shardOf(meansId, options.shardCount) !== shard || !(options.identity.shards ?? []).includes(shard)) {
    return answer('refused', 'wrongShard', `means ${meansId} is in shard ${shardOf(meansId, options.shardCount)}, not in shard ${shard} of this server`);
  }
  const stored = options.meta.getMeta(REFUSAL_KEY + transferId);
  if (stored !== undefined) {
    const { code, reason } = JSON.parse(stored) as { code: string; reason: string };
    return answer('refused', code, reason);
  }
  try {
    options.ledger.spendElsewhere({ transferId, meansId, payee: command.payee, amountMinor: command.amountMinor });
    return answer('applied');
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    // An id conflict says a transfer with this id exists already: storing it would hide that transfer's answer.
    if (error.code !== 'idConflict') options.meta.putMeta(REFUSAL_KEY + transferId, JSON.stringify({ code: error.code, reason: error.message }));
    return answer('refused', error.code, error.message);
  }
}

/** The control channel to give `createMqttLink`, and what it counted. */
export function createServerControl(options: ServerControlOptions): { channel: ControlChannel; counts: ServerControlCounts; stop(): void } {
  const counts: ServerControlCounts = { applied: 0, refused: {}, rejected: {}, unsent: 0 };
  const answerTopic = controlAckTopic(options.identity);
  let queue: Array<{ shard: number; command: SpendElsewhereCommand; publish: (topic: string, payload: string) => boolean }> = [];
  let pending: ReturnType<typeof setImmediate> | undefined;
  let stopped = false;

  const flush = (): void => {
    pending = undefined;
    const batch = queue;
    queue = [];
    const answers: Array<{ answer: SpendElsewhereAnswer; publish: (topic: string, payload: string) => boolean }> = [];
    try {
      options.ledger.store.transaction(() => {
        for (const item of batch) answers.push({ answer: applySpend(options, item.shard, item.command), publish: item.publish });
      });
    } catch (error) {
      options.onFailure(error);
      return;
    }
    // Committed (and durable, unless the store syncs afterwards): only then do the answers go out.
    const send = (): void => {
      for (const { answer, publish } of answers) {
        if (answer.outcome === 'applied') counts.applied++;
        else bump(counts.refused, answer.code ?? 'unknown');
        if (!publish(answerTopic, JSON.stringify(answer))) counts.unsent++;
      }
    };
    if (!options.syncCommitted) return send();
    options.syncCommitted((error) => {
      if (stopped) return;
      if (error) options.onFailure(error);
      else send();
    });
  };

  const channel: ControlChannel = {
    receive(topic, payload, publish) {
      // Only the harness may publish on a server's command topic (the broker's ACL), so that is the publisher.
      const decoded = decodeControl(payload, topic, { role: 'harness', id: 'harness' });
      const route = parseTopic(topic);
      if (!decoded.ok || decoded.message.kind !== 'spendElsewhere' || route?.family !== 'ctlCmd') {
        const code = decoded.ok ? 'notACommand' : decoded.code;
        bump(counts.rejected, code);
        options.log?.(`control message on ${topic} refused: ${decoded.ok ? `${code}: ${decoded.message.kind}` : decoded.reason}`);
        return;
      }
      queue.push({ shard: route.shard, command: decoded.message, publish });
      pending ??= setImmediate(flush);
    },
  };
  return {
    channel,
    counts,
    // Spends queued but not applied are dropped: nothing was written or answered, and the harness resends them.
    stop() {
      stopped = true;
      if (pending) clearImmediate(pending);
      pending = undefined;
      queue = [];
    },
  };
}
