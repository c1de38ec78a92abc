// Goal: where each part of an mqtt run over agents goes — how many terminals each agent's workers take, how
// many workers each agent runs, which agent hosts each payment server — and a fleet that cannot be hosted is
// refused before anything starts, with the numbers.
// Method: a pure function of the agents' capacities. Terminals are shared in proportion to capacity (largest
// remainder, so the shares sum to the fleet), never above an agent's capacity; an agent runs one worker per
// `MAX_TERMINALS_PER_WORKER` of its share (one process holds fewer than 10,000 sockets here); the server
// processes go round the agents, the roomiest first.

export interface AgentOffer {
  name: string;
  /** Terminals it can hold. */
  capacity: number;
}

export interface FleetPlacement {
  /** In worker order: the agent (index into the offers) and the terminals it takes, contiguous from 0. */
  workers: Array<{ agent: number; terminals: number }>;
  /** For each server process (shard group), the agent that hosts it. */
  servers: number[];
}

/** Terminals one worker process takes at most (fewer than 10,000 sockets per process here, with room to spare). */
export const MAX_TERMINALS_PER_WORKER = 8_000;

export class PlacementError extends Error {
  constructor(
    readonly code: 'noAgents' | 'fleetTooLarge',
    message: string,
    readonly value: unknown,
  ) {
    super(message);
    this.name = 'PlacementError';
  }
}

/** Places `terminals` terminals and `serverCount` server processes over `agents`; throws PlacementError if they cannot hold them. */
export function placeFleet(agents: readonly AgentOffer[], terminals: number, serverCount: number): FleetPlacement {
  if (agents.length === 0) throw new PlacementError('noAgents', 'no agent to place the fleet on', 0);
  const capacity = agents.reduce((sum, a) => sum + a.capacity, 0);
  if (terminals > capacity) {
    const each = agents.map((a) => `${a.name} ${a.capacity}`).join(', ');
    throw new PlacementError('fleetTooLarge', `the fleet has ${terminals} terminals; the agents hold ${capacity} together (${each})`, { terminals, capacity });
  }
  const shares = proportionalShares(terminals, agents.map((a) => a.capacity));
  const workers: FleetPlacement['workers'] = [];
  for (const [agent, share] of shares.entries()) {
    const count = Math.ceil(share / MAX_TERMINALS_PER_WORKER);
    for (let w = 0; w < count; w++) workers.push({ agent, terminals: Math.floor(((w + 1) * share) / count) - Math.floor((w * share) / count) });
  }
  // A fleet of no terminals still runs one (empty) worker, as a local run does.
  if (workers.length === 0) workers.push({ agent: 0, terminals: 0 });
  const roomiest = agents.map((_, i) => i).sort((a, b) => agents[b]!.capacity - agents[a]!.capacity || a - b);
  const servers = Array.from({ length: serverCount }, (_, g) => roomiest[g % roomiest.length]!);
  return { workers, servers };
}

/** `total` split in proportion to `weights` (largest remainder), each share at most its weight. */
export function proportionalShares(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (sum === 0) return weights.map(() => 0);
  const exact = weights.map((w) => (total * w) / sum);
  const shares = exact.map(Math.floor);
  let left = total - shares.reduce((a, b) => a + b, 0);
  const byRemainder = exact.map((x, i) => ({ i, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of byRemainder) {
    if (left === 0) break;
    if (shares[i]! < weights[i]!) {
      shares[i]!++;
      left--;
    }
  }
  return shares;
}
