// Goal: refuse, before anything starts, a fleet that this test bed cannot host — a swarm worker process needing
// more sockets than its file-descriptor limit, or a broker started here needing more than its own — with the
// numbers, instead of a run that connects half its terminals and ends with an ENVIRONMENT verdict minutes later.
// Method: count the endpoints each process holds as the run will place them (terminals split evenly over the
// workers, POS units round-robin; on several brokers each terminal and POS on its home broker, every server on each
// of its brokers, the harness's two connections on the servers' first broker) and compare each with the limit
// that process will have: a child inherits this process's RLIMIT_NOFILE, read from /proc/self/limits (Node raises
// its soft limit to the hard one at start-up, so the soft value read here is the one its children get). A broker
// given by URL runs elsewhere with a limit this process cannot read: it is counted (the counts are printed, and
// `payfleet broker-config` writes them into a Mosquitto's configuration) but not checked.

import { readFileSync } from 'node:fs';
import type { Scenario } from '../scenario/types.ts';
import { homeBrokerIndex } from '../../broker/linkPolicy.ts';
import { terminalId } from '../core/population.ts';
import { shardGroups } from './identities.ts';

/** Descriptors a Node process uses besides its endpoints' sockets: stdio, IPC, log files, libuv, the SQLite or epoll handles. */
export const FD_RESERVE = 64;

/** The soft limit of open files of this process (`ulimit -n`); undefined where /proc is not there or says unlimited. */
export function openFilesLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
}

export interface FleetPlacement {
  scenario: Scenario;
  /** Swarm worker processes. */
  workers: number;
  /** The terminals' brokers (comma-separated), or undefined for the embedded broker started here. */
  brokerUrl: string | undefined;
  /** The servers' brokers when not the terminals'. */
  serverBrokerUrl?: string;
}

export interface BrokerLoad {
  url: string;
  /** Connections it holds while every broker is up. */
  endpoints: number;
  /** Whether this process starts it (so its limit is known). */
  startedHere: boolean;
}

export interface FleetCounts {
  /** Endpoints (terminals + POS) of the busiest worker process. */
  endpointsPerWorker: number;
  brokers: BrokerLoad[];
  /** Every connection of the run: what one broker holds when it is the last one up. */
  allEndpoints: number;
}

/** Where the run's connections will be (see the header). */
export function fleetCounts(placement: FleetPlacement): FleetCounts {
  const { scenario, workers } = placement;
  const terminals = scenario.population.terminals;
  const pos = scenario.population.pos.units;
  const endpointsPerWorker = Math.ceil(terminals / workers) + Math.ceil(pos / workers);
  const terminalUrls = placement.brokerUrl?.split(',') ?? ['embedded'];
  const serverUrls = placement.serverBrokerUrl?.split(',') ?? terminalUrls;
  const servers = shardGroups(scenario.population.shards).length;
  const load = new Map<string, number>([...terminalUrls, ...serverUrls].map((url) => [url, 0]));
  const add = (url: string, n: number) => load.set(url, load.get(url)! + n);
  // Terminals and POS on their home broker: counted by id, as broker/linkPolicy.ts places them.
  for (let i = 0; i < terminals; i++) add(terminalUrls[homeBrokerIndex(terminalId(i), terminalUrls.length)]!, 1);
  for (let p = 0; p < pos; p++) add(terminalUrls[homeBrokerIndex(`pos${p}`, terminalUrls.length)]!, 1);
  for (const url of serverUrls) add(url, servers);
  // The harness's control connection and the adversary's.
  add(serverUrls[0]!, 2);
  const brokers = [...load].map(([url, endpoints]) => ({ url, endpoints, startedHere: placement.brokerUrl === undefined }));
  return { endpointsPerWorker, brokers, allEndpoints: terminals + pos + servers * serverUrls.length + 2 };
}

/** Why the fleet does not fit, one line per process that cannot hold its share; empty when it fits. */
export function fleetMisfits(counts: FleetCounts, fdLimit: number | undefined): string[] {
  if (fdLimit === undefined) return [];
  const problems: string[] = [];
  const usable = fdLimit - FD_RESERVE;
  if (counts.endpointsPerWorker > usable) {
    problems.push(
      `a swarm worker process would hold ${counts.endpointsPerWorker} connections, but its file-descriptor limit is ${fdLimit} (${usable} after ${FD_RESERVE} for the process itself): raise it (ulimit -n) or run fewer terminals per machine`,
    );
  }
  for (const broker of counts.brokers) {
    if (!broker.startedHere || broker.endpoints <= usable) continue;
    problems.push(
      `the embedded broker would hold ${broker.endpoints} connections, but its file-descriptor limit is ${fdLimit} (${usable} after ${FD_RESERVE} for the process itself): raise it (ulimit -n) or use several brokers (--broker URL,URL)`,
    );
  }
  return problems;
}
