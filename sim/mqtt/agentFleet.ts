// Goal: an mqtt run over agents, as the coordinator sees it: listen and print the URL, wait for N agents (a clear
// error after the timeout), place the workers and servers over them (placement.ts), hand the pool and the
// supervisor what they need to reach them, and at the end the `agents` section of summary.json.
// Method: wraps an `AgentHub` (agentHub.ts); the coordinator calls it at its phases and stays otherwise as in a
// local run. An agent lost mid-run is reported through `failed` with its name, host and what it held.

import type { Scenario } from '../scenario/types.ts';
import type { AgentSummary } from '../run/summary.ts';
import { AgentHub, type AgentLink } from './agentHub.ts';
import { shardGroups } from './identities.ts';
import { placeFleet, PlacementError, type FleetPlacement } from './placement.ts';
import { HarnessError, type AgentRunOptions } from './runOptions.ts';
import type { RunLog } from './runLog.ts';
import type { PlaceServer } from './supervisor.ts';
import type { PoolStart } from './workerPool.ts';

export class AgentFleet {
  private agents: AgentLink[] = [];
  private placement: FleetPlacement | undefined;
  private nextServer = 0;
  /** The scenario the servers' registry is written from, on each agent. */
  private scenario: Scenario | undefined;

  private constructor(
    private readonly hub: AgentHub,
    private readonly options: AgentRunOptions,
    private readonly runLog: RunLog,
  ) {}

  /** Listens for agents; `failed` ends the run when one is lost after it connected. */
  static async listen(options: AgentRunOptions, secret: string, logDir: string, runLog: RunLog, failed: (error: Error) => void): Promise<AgentFleet> {
    let hub: AgentHub;
    try {
      hub = await AgentHub.listen({
        host: options.host,
        port: options.port,
        secret,
        expected: options.count,
        logDir,
        log: (line) => runLog.log(line),
        onAgentLost: (agent, why) =>
          failed(new HarnessError('agentLost', `agent ${agent.name} (host ${agent.hello?.host ?? agent.address}) was lost mid-run: ${why}; it held ${agent.holding}`, agent.name)),
      });
    } catch (error) {
      throw new HarnessError('agentsCannotListen', `--listen: cannot listen for agents on ${options.host}:${options.port}: ${(error as Error).message}`, `${options.host}:${options.port}`);
    }
    return new AgentFleet(hub, options, runLog);
  }

  get url(): string {
    return this.hub.url;
  }

  /** The host the embedded broker listens on: the address agents reach this coordinator at. */
  get brokerHost(): string {
    return this.options.host;
  }

  /** Waits for the agents and places the fleet over them; throws `agentsMissing` or `fleetTooLarge` (bad input). */
  async place(scenario: Scenario): Promise<void> {
    const { count, waitRealMs } = this.options;
    this.runLog.log(`  agents: waiting for ${count} at ${this.url} (on each host: PAYFLEET_BROKER_SECRET=… payfleet agent --coordinator ${this.url})`);
    this.agents = await this.hub.waitForAgents(waitRealMs);
    this.scenario = scenario;
    try {
      this.placement = placeFleet(
        this.agents.map((a) => ({ name: a.name, capacity: a.capacity })),
        scenario.population.terminals,
        shardGroups(scenario.population.shards).length,
      );
    } catch (error) {
      if (error instanceof PlacementError) throw new HarnessError(error.code, `the fleet does not fit on the agents; nothing was run: ${error.message}`, error.value);
      throw error;
    }
  }

  /** The workers as the pool starts them: each on its agent, with its terminals. */
  get workers(): NonNullable<PoolStart['placed']> {
    return this.placement!.workers.map(({ agent, terminals }) => ({ terminals, transport: (index: number) => this.agents[agent]!.placeWorker(index, terminals) }));
  }

  /** Puts each server process on the agent placement gave it (in the supervisor's order of shard groups). */
  readonly placeServer: PlaceServer = (request) => this.agents[this.placement!.servers[this.nextServer++]!]!.placeServer(request, this.scenario!);

  /** Each agent's peak RSS, asked for once its children have stopped; an agent that cannot answer is logged. */
  async collectStats(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.collectStats().catch((error: Error) => this.runLog.log(`  no figures from agent ${a.name}: ${error.message}`))));
  }

  summary(): AgentSummary[] {
    return this.agents.map((a) => ({
      name: a.name,
      host: a.hello?.host ?? a.address,
      address: a.address,
      capacity: a.capacity,
      terminals: a.terminals,
      workers: [...a.workers.keys()],
      servers: [...a.servers.keys()],
      peakRssBytes: a.stats?.peakRssBytes ?? null,
    }));
  }

  /** Tells every agent the run is over and closes the endpoint. */
  close(): Promise<void> {
    return this.hub.close();
  }
}
