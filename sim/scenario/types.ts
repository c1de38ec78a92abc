// Goal: the resolved scenario, the one shape the simulator, the runners and the reports read.
// Method: `load.ts` parses a YAML file, validates it and applies every default, so nothing here is optional:
// every duration is already a number of milliseconds (names end in `Ms`), every amount an integer of minor
// units (names end in `Minor`), and every absent optional block is `null`. The policy blocks reuse the domain
// types of `machines/domain`, so a scenario's policy is handed to the proxy as it is (see `proxyPolicyOf` in `policy.ts`).

import type { Minor } from '../../machines/domain/money.ts';
import type { ConfirmationPolicy } from '../../machines/domain/confirmation.ts';
import type { OfflinePolicy } from '../../machines/domain/discriminate.ts';
import type { MeansKind } from '../../machines/domain/means.ts';
import type { RemittancePolicy } from '../../machines/domain/remittance.ts';
import type { SignatureScheme } from '../../machines/domain/signature.ts';
import type { ScenarioCalibration } from './calibration.ts';

/** A distribution of amounts. Draws are integers of minor units. */
export type AmountDistribution =
  /** Always the same amount. */
  | { kind: 'fixed'; amountMinor: Minor }
  /** Uniform over the integers minMinor..maxMinor inclusive (minMinor ≤ maxMinor). */
  | { kind: 'uniform'; minMinor: Minor; maxMinor: Minor }
  /** Log-normal with the given median and 99th percentile (1 ≤ medianMinor ≤ p99Minor), rounded to integers. */
  | { kind: 'lognormal'; medianMinor: Minor; p99Minor: Minor };

/** An amount granted for a period: a fixed amount FF (S0, P) or a recurring amount FLR, or a ceiling PD. */
export interface PeriodAmount {
  amountMinor: Minor;
  periodMs: number;
}

export type CeilingPeriodBy = 'time' | 'remittance' | 'connection';

/** A purse of local value on the SIM: PMVL (wallet), FF (fixedAmount) or FLR (recurring). */
export interface LocalValueProfile {
  kind: 'wallet' | 'fixedAmount' | 'recurring';
  amountMinor: Minor;
  periodMs: number;
  reloadBelowMinor: Minor;
}

export interface Region {
  name: string;
  /** Fraction of the terminals in this region; the shares of all regions sum to 1. */
  share: number;
}

/** A profile of payment means MPk; each terminal draws one profile, by weight. */
export interface MeansProfile {
  name: string;
  /** Relative weight (> 0) of this profile among all profiles. */
  weight: number;
  kind: MeansKind;
  /** Dedicated: the terminal is the only point of issue; shared: `elsewhere` spends from it too. */
  dedicated: boolean;
  /** Terminals sharing one account of this profile (1: each its own); > 1 only when not dedicated. */
  sharedBy: number;
  /** Money on the account at the start, as SD sees it. */
  openingBalanceMinor: Minor;
  /** Postpaid only (0 for other kinds): how far the account may go below zero. */
  creditLimitMinor: Minor;
  /** SL at the start: default openingBalanceMinor + creditLimitMinor. */
  localBalanceMinor: Minor;
  /** The means has an electronic wallet PMVL on the SIM, starting with localBalanceMinor. */
  wallet: boolean;
  fixedAmount: PeriodAmount | null;
  recurring: PeriodAmount | null;
  /** Expenditure ceiling PD per period; periods by time, or ended by each remittance or connection. */
  ceiling: (PeriodAmount & { periodBy: CeilingPeriodBy }) | null;
  /** Value on the SIM for internal payments, in a purse funded from this means. */
  localValue: LocalValueProfile | null;
  /** Spending by other points of issue (only when not dedicated). */
  elsewhere: { ordersPerHour: number; amount: AmountDistribution } | null;
  /** Auto-reload: when a posting leaves less than belowMinor available at SD, SD credits a drawn amount from outside. */
  topUp: TopUpRule | null;
}

/** A means profile's auto-reload agreement (see MeansProfile.topUp). */
export interface TopUpRule {
  belowMinor: Minor;
  amount: AmountDistribution;
}

export type AppType = 'internal' | 'telepayment';
export type RemoteMode = 'debit' | 'authCapture';

export interface AppProfile {
  name: string;
  type: AppType;
  /** Fraction of the terminals that have this app, in [0, 1]. */
  share: number;
  /** Payment orders per terminal having the app, per hour (Poisson). */
  ordersPerHour: number;
  amount: AmountDistribution;
  /** The beneficiary's account name on the server's ledger. */
  payee: string;
  /** Remote payments: one debit request, or an authorisation captured `captureAfterMs` later. */
  remoteMode: RemoteMode;
  captureAfterMs: number;
}

export interface PosPopulation {
  /** Number of point-of-sale units (0: no proximity payments). */
  units: number;
  /** Shop visits (proximity payment orders) per terminal per hour (Poisson). */
  visitsPerTerminalPerHour: number;
  amount: AmountDistribution;
  /** Number of merchants the units belong to (1 ≤ merchants ≤ units when units > 0). */
  merchants: number;
}

export interface UserBehaviour {
  /** Probability that the user says no when asked to approve. */
  declineProbability: number;
  /** Probability that the user enters a wrong PIN at each try. */
  wrongPinProbability: number;
  /** The PIN every simulated user knows. */
  pin: string;
  /** Time the user takes to answer a confirmation. */
  thinkTimeMs: number;
}

export interface Population {
  terminals: number;
  /** Payment-server shards; a means is served by shard hash(meansId) mod shards. */
  shards: number;
  regions: Region[];
  means: MeansProfile[];
  apps: AppProfile[];
  pos: PosPopulation;
  users: UserBehaviour;
}

/** The proxy's policy; `proxyPolicyOf` turns it into the domain's `ProxyPolicy`. */
export interface ScenarioPolicy {
  /** M0: in coverage, amounts strictly above go remote. */
  thresholdMinor: Minor;
  offline: OfflinePolicy;
  confirmation: ConfirmationPolicy;
  remittance: RemittancePolicy;
  remoteTimeoutMs: number;
}

export interface Outage {
  region: string;
  atMs: number;
  durationMs: number;
}

export interface Coverage {
  /** Mean time a terminal stays in coverage (exponential). */
  meanOnDurationMs: number;
  /** Mean time a terminal stays out of coverage (exponential); 0 disables random coverage loss. */
  meanOffDurationMs: number;
  outages: Outage[];
}

export interface Network {
  latency: { medianMs: number; p99Ms: number };
  lossProbability: number;
  duplicateProbability: number;
  reorderProbability: number;
}

/** A scheduled fault; `atMs` is from the start of the run and before `durationMs`. */
export type Fault =
  | { kind: 'serverCrash'; atMs: number; shard: number; restartAfterMs: number }
  | { kind: 'brokerCrash'; atMs: number; restartAfterMs: number }
  /** mqtt mode on a PostgreSQL ledger the run controls (`--ledger-pgdata`): the database crashes and restarts. */
  | { kind: 'databaseCrash'; atMs: number; restartAfterMs: number }
  | { kind: 'terminalCrash'; atMs: number; count: number; restartAfterMs: number }
  | { kind: 'simMove'; atMs: number; count: number }
  /** `skewMs` is signed: negative puts the terminals' clocks behind. */
  | { kind: 'clockSkew'; atMs: number; count: number; skewMs: number }
  | { kind: 'partition'; atMs: number; shard: number; durationMs: number }
  | { kind: 'forgedSignature'; atMs: number; count: number }
  | { kind: 'replayedRemittance'; atMs: number; count: number }
  | { kind: 'alteredInFlight'; atMs: number; count: number }
  | { kind: 'malformedPayload'; atMs: number; count: number }
  | { kind: 'wrongTopic'; atMs: number; count: number };

export type FaultKind = Fault['kind'];

/** A source of open-model orders: an app name of population.apps, or 'pos' for a shop visit. */
export interface ArrivalMixEntry {
  source: string;
  weight: number;
}

interface ArrivalBase {
  /** The rates are orders per `timeUnitMs`. */
  timeUnitMs: number;
  startTimeMs: number;
  /** Bound on app orders issued and not yet answered; 0 for none. */
  maxInFlight: number;
  /** Empty: the drawn terminal's own mix. */
  mix: ArrivalMixEntry[];
}

/** Open-model load, as k6's arrival-rate executors (see spec.ts for the exact arrival times). */
export type Arrival =
  | (ArrivalBase & { executor: 'constant-arrival-rate'; rate: number; durationMs: number | null })
  | (ArrivalBase & { executor: 'ramping-arrival-rate'; startRate: number; stages: Array<{ target: number; durationMs: number }> });

export interface Servers {
  /** Virtual mode: time one shard takes per request (FIFO queue per shard); 0 for none. */
  serviceTimeMs: number;
  /** Virtual mode: the measured server costs (calibration.ts), loaded from the file the scenario names. */
  calibration?: ScenarioCalibration;
}

/** A fully resolved scenario: every default applied, every cross-field rule checked. */
export interface Scenario {
  name: string;
  description: string;
  /** Seed of every random draw of the run: 0 ≤ seed ≤ 2^32 − 1. */
  seed: number;
  /** Safety phase: orders, coverage changes and faults happen during this time. */
  durationMs: number;
  /** Liveness phase: after durationMs, coverage returns and every backlog must drain within this time. */
  drainMs: number;
  crypto: SignatureScheme;
  population: Population;
  policy: ScenarioPolicy;
  coverage: Coverage;
  network: Network;
  /** In the order the file gives them. */
  faults: Fault[];
  servers: Servers;
  /** Open-model load; null: each terminal's own Poisson rates. */
  arrival: Arrival | null;
  /** Pass/fail thresholds as written, each valid (see thresholds.ts); evaluated into summary.thresholds. */
  thresholds: string[];
}
