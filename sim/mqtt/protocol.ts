// Goal: what the coordinator of an mqtt-mode run and its swarm worker processes say to each other over Node's IPC
// channel (`process.send`): one typed union each way, so both sides agree on every field.
// Method: plain JSON-serialisable objects. Workers report in batches (a few per second of real time), never one
// message per event, so IPC stays cheap at ten thousand terminals; only the figures the coordinator needs for the
// summary, the time series and the end checks cross the channel.

import type { Proof } from '../../machines/messages.ts';
import type { Fault, Scenario } from '../scenario/types.ts';
import type { InvariantCount } from '../check/invariantBook.ts';
import type { TerminalEnd } from '../check/inv7Liveness.ts';
import type { LinkStats } from '../../broker/linkOptions.ts';
import type { ArrivalStats } from '../core/workload.ts';
import type { PurseAtEnd } from '../check/localValueCheck.ts';

/** The device faults a worker applies to its own terminals (the coordinator applies the others). */
/** The faults a worker applies to its own devices (alteredInFlight on its links' radio path). */
export type WorkerFault = Extract<Fault, { kind: 'terminalCrash' | 'simMove' | 'clockSkew' | 'alteredInFlight' }>;

export interface WorkerInit {
  type: 'init';
  scenario: Scenario;
  workerIndex: number;
  workerCount: number;
  /** Global terminal indices this worker hosts: [from, to). */
  terminalsFrom: number;
  terminalsTo: number;
  /** The POS units this worker hosts (its terminals visit only these). */
  posIndices: number[];
  brokerUrl: string;
  /** Brokers the endpoints fail over to after `brokerUrl`'s (broker/linkOptions.ts `failoverUrl`); none when absent. */
  failoverBrokerUrl?: string;
  secret: string;
  timeScale: number;
  /** This worker's share of the device faults (counts already split between workers). */
  faults: WorkerFault[];
  /** Real milliseconds between two report batches. */
  batchEveryRealMs: number;
  /** Real time the worker waits for all its endpoints to connect before it reports ready anyway. */
  connectTimeoutRealMs: number;
}

export type ToWorker =
  | WorkerInit
  /** Run time 0 is at `originEpochMs` (a wall epoch, see realTime.ts): start the workload, coverage and faults. */
  | { type: 'start'; originEpochMs: number }
  /** The safety phase is over: stop the workload and the faults, restore coverage, and report once drained. */
  | { type: 'drain' }
  /** Send the final report (after a last batch), then wait for `exit`. */
  | { type: 'finish' }
  | { type: 'exit' }
  | { type: 'bench'; command: BenchCommand };

/**
 * What a benchmark driver (load/bench/mqtt) asks a worker to do during the safety phase, instead of the
 * scenario's own workload: a closed loop of payments, a coverage storm, and probes of its state.
 */
export type BenchCommand =
  /** `concurrency` terminals each pay from `app` back to back (one order in flight each) for `durationRealMs`. */
  | { id: number; kind: 'closedLoop'; app: string; concurrency: number; durationRealMs: number }
  /** Every terminal of the worker loses coverage (`inCoverage` false) or regains it, at once. */
  | { id: number; kind: 'coverage'; inCoverage: boolean }
  /** Every terminal pays `perTerminal` orders from `app`, one after the other; answers once all are decided. */
  | { id: number; kind: 'payEach'; app: string; perTerminal: number }
  /** Answers with the worker's state now; with `collectGarbage`, after a full garbage collection (memory figures). */
  | { id: number; kind: 'probe'; collectGarbage?: boolean };

export interface BenchProbe {
  linksUp: number;
  expectedLinks: number;
  /** Journal items not acknowledged by SD (pending + outbox), over every terminal. */
  unacknowledged: number;
  ordersInFlight: boolean;
  rssBytes: number;
  heapUsedBytes: number;
}

export type BenchReply =
  | { id: number; kind: 'closedLoop'; decided: number; approved: number; byReason: Record<string, number>; byPath: Record<string, number>; latenciesRealMs: number[]; elapsedRealMs: number }
  | { id: number; kind: 'coverage'; changed: number }
  | { id: number; kind: 'payEach'; decided: number; approved: number; approvedAmountMinor: number; byReason: Record<string, number>; byPath: Record<string, number> }
  | ({ id: number; kind: 'probe' } & BenchProbe);

/** One answered order, as the coordinator records it. */
export interface DecidedRecord {
  atMs: number;
  terminalId: string;
  path: string;
  ok: boolean;
  reason?: string;
  /** Authorisation latency in real milliseconds (decision start → decision). */
  latencyRealMs: number;
  latencyKind: 'local' | 'remote';
  proof?: Proof;
  remoteMode?: 'debit' | 'authCapture';
  /** A remote payment declined after its request went to SD (see ProxyEmitted's proxy.decided) [INV-4]. */
  declinedRemoteTxId?: string;
}

export interface RemittedRecord {
  atMs: number;
  terminalId: string;
  count: number;
  amountMinor: number;
  /** Every transaction remitted; the coordinator's run record gives each its lag from its approval. */
  txIds: string[];
}

/** A payment through another point of issue of a shared means (a web shop), for the coordinator to apply. */
export interface ElsewhereSpend {
  transferId: string;
  meansId: string;
  payee: string;
  amountMinor: number;
}

export interface WorkerBatch {
  type: 'batch';
  workerIndex: number;
  decided: DecidedRecord[];
  remitted: RemittedRecord[];
  posReceipts: Proof[];
  elsewhere: ElsewhereSpend[];
  /** Named counters to add (refusals by reason, POS declines…). */
  counts: Record<string, number>;
  /** Gauges at the time of the batch. */
  inCoverage: number;
  linksUp: number;
  /** Link counters since the worker started (the coordinator keeps the latest). */
  link: LinkStats;
}

/** A terminal at the end: up or down, and its proxy's journal (empty once drained), for INV-7. */
export type { TerminalEnd } from '../check/inv7Liveness.ts';

export interface WorkerFinal {
  type: 'final';
  workerIndex: number;
  terminals: TerminalEnd[];
  pos: Array<{ posId: string; unsettled: number }>;
  /** App orders still waiting for their answer at the end [INV-7]. */
  unansweredOrders: string[];
  /** The purses of local value on the worker's SIMs, for the end check that SD's books agree [INV-4]. */
  purses?: PurseAtEnd[];
  invariants: InvariantCount[];
  violations: Array<{ invariant: string; message: string; timeMs: number; recent: Array<{ timeMs: number; actor: string; text: string }> }>;
  workload: Record<string, number>;
  /** The worker's open-model executor figures (its share of the scenario's `arrival`); null without one. */
  arrival: ArrivalStats | null;
  faults: Record<string, number>;
  coverageChanges: number;
  link: LinkStats;
  /** This worker's endpoints (terminal and POS ids) whose link never came up during the run: how many, the first few. */
  neverConnected: { count: number; ids: string[] };
}

export type FromWorker =
  | { type: 'ready'; workerIndex: number; endpoints: number; linksUp: number; rssBytes: number; rssBeforeFleetBytes: number }
  | { type: 'bench'; workerIndex: number; reply: BenchReply }
  | WorkerBatch
  | { type: 'drained'; workerIndex: number; atMs: number }
  | WorkerFinal
  | { type: 'error'; workerIndex: number; message: string };
