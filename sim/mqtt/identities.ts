// Goal: who connects to the broker in an mqtt-mode run — every terminal, every POS unit, one identity per
// payment-server process, and the harness — so an external broker (Mosquitto) can be given exactly their
// passwords and ACL rules before the run starts.
// Method: the same ids the population and the coordinator use (`t{i}`, `pos{i}`, the servers' shard ranges).

import type { ClientIdentity } from '../../broker/topics.ts';
import { serverIdentity } from '../../broker/topics.ts';
import { planPos, terminalId } from '../core/population.ts';
import type { Scenario } from '../scenario/types.ts';

/** Server processes at most (two cores here: more would only compete with the workers and the broker). */
export const MAX_SERVER_PROCESSES = 4;

/** Contiguous shard ranges, one per server process. */
export function shardGroups(shards: number, processes = MAX_SERVER_PROCESSES): number[][] {
  const count = Math.max(1, Math.min(shards, processes));
  const groups: number[][] = [];
  for (let g = 0; g < count; g++) {
    const from = Math.floor((g * shards) / count);
    const to = Math.floor(((g + 1) * shards) / count);
    groups.push(Array.from({ length: to - from }, (_, i) => from + i));
  }
  return groups;
}

export function runIdentities(scenario: Scenario): ClientIdentity[] {
  const identities: ClientIdentity[] = [];
  for (let i = 0; i < scenario.population.terminals; i++) identities.push({ role: 'terminal', id: terminalId(i) });
  for (const pos of planPos(scenario)) identities.push({ role: 'pos', id: pos.posId });
  for (const shards of shardGroups(scenario.population.shards)) identities.push(serverIdentity(shards));
  identities.push({ role: 'harness', id: 'harness' });
  return identities;
}
