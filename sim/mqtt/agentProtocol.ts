// Goal: what the coordinator of an mqtt run and a `payfleet agent` on another host say to each other over their
// WebSocket, and the token an agent shows to be let in: one typed union each way, so both sides agree on every
// field. The swarm workers' own `ToWorker`/`FromWorker` messages cross inside it unchanged.
// Method: one JSON object per WebSocket text message. The coordinator places workers (fire and forget; the
// worker's messages follow) and asks for everything else — a server started, crashed, paused, resumed, stopped;
// its ledger's figures; its ledger file; the agent's peak RSS — as a request with an id, answered by a `reply`
// with the same id. The token is HMAC-SHA256 of a fixed label under the run's secret (PAYFLEET_BROKER_SECRET), so
// an agent that knows the secret can join and nothing else can; it travels in the Authorization header.

import { timingSafeEqual } from 'node:crypto';
import { passwordFor } from '../../broker/credentials.ts';
import type { Scenario } from '../scenario/types.ts';
import type { FromWorker, ToWorker } from './protocol.ts';

/** The label the agent token is derived for; no MQTT username has this form, so no broker password equals it. */
const AGENT_TOKEN_LABEL = 'payfleet-agent:v1';

/** The token an agent shows: derived from the run's secret. */
export function agentTokenFor(secret: string): string {
  return passwordFor(secret, AGENT_TOKEN_LABEL);
}

/** Whether an Authorization header carries the run's agent token (compared in constant time). */
export function isAgentTokenValid(secret: string, authorization: string | undefined): boolean {
  if (!authorization?.startsWith('Bearer ')) return false;
  const given = Buffer.from(authorization.slice('Bearer '.length));
  const expected = Buffer.from(agentTokenFor(secret));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** What an agent hosts, as it tells the coordinator on connecting. */
export interface AgentHello {
  type: 'hello';
  /** Unique per run (default: host name and pid). */
  name: string;
  host: string;
  pid: number;
  /** Terminals it can hold (from --capacity, else its fd limit and memory). */
  capacity: number;
}

/** A payment server to start on the agent (its ledger on the agent's disk unless `database` is given). */
export interface ServerStart {
  range: string;
  brokerUrl: string;
  /** The scenario, from which the agent writes the registry the server reads (no shared filesystem). */
  scenario: Scenario;
  /** `postgres://…?schema=…` when the ledgers are in a database every host reaches; else a local SQLite file. */
  database?: string;
  synchronous?: 'full' | 'normal';
}

export type AgentRequest =
  | { op: 'startServer'; server: ServerStart }
  | { op: 'killServer'; range: string }
  | { op: 'pauseServer'; range: string }
  | { op: 'resumeServer'; range: string }
  | { op: 'stopServer'; range: string }
  /** The minute sample's figures of a server's SQLite ledger [INV-3]. */
  | { op: 'ledgerFigures'; range: string }
  /** The stopped server's whole SQLite ledger, sent as `ledgerChunk` messages before the reply. */
  | { op: 'fetchLedger'; range: string }
  | { op: 'stats' };

/** What an agent measured of itself and its children. */
export interface AgentStats {
  /** Sum over its children of each one's peak resident set (VmHWM), plus the agent's own peak. */
  peakRssBytes: number;
  children: Array<{ name: string; peakRssBytes: number }>;
}

export type ToAgent =
  | { type: 'startWorker'; worker: number }
  | { type: 'toWorker'; worker: number; message: ToWorker }
  /** SIGKILL to a worker that did not exit when told. */
  | { type: 'killWorker'; worker: number }
  | ({ type: 'request'; id: number } & AgentRequest)
  /** The run is over: stop every child and exit 0. */
  | { type: 'bye' };

export type FromAgent =
  | AgentHello
  | { type: 'workerStarted'; worker: number; pid: number }
  | { type: 'fromWorker'; worker: number; message: FromWorker }
  | { type: 'workerExited'; worker: number; code: number | null; signal: string | null }
  /** A server exited without being told to (a supervisor would restart it: the coordinator does). */
  | { type: 'serverExited'; range: string; code: number | null; signal: string | null }
  /** Output of a child, for logs/<name>.log in the coordinator's run directory. */
  | { type: 'log'; name: string; text: string }
  | { type: 'ledgerChunk'; range: string; base64: string }
  | { type: 'reply'; id: number; ok: true; value?: unknown }
  | { type: 'reply'; id: number; ok: false; error: string };

/** Parses one message; undefined when it is not a JSON object with a string `type`. */
export function parseWireMessage<T extends { type: string }>(data: unknown): T | undefined {
  try {
    const value: unknown = JSON.parse(String(data));
    return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string' ? (value as T) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What the coordinator's stand-ins for an agent's workers and servers (agentRemotes.ts) need of the link to their
 * agent: its name, whether it is gone, and the channel. The link (agentHub.ts) implements it; naming it here keeps
 * the stand-ins from importing the hub that makes them.
 */
export interface AgentChannel {
  readonly name: string;
  readonly gone: string | undefined;
  send(message: ToAgent): void;
  request(request: AgentRequest, timeoutMs?: number): Promise<unknown>;
}
