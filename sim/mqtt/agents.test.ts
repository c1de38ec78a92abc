// A run spread over agents, for real: a coordinator (`payfleet run … --agents 2`) and two `payfleet agent`
// processes — each in its own Linux network namespace joined by a veth pair when the test runs as root, plain
// processes otherwise — with a WebSocket client that has no token refused on the way; then the faults of a
// scenario applied by the agents to the servers they host, and a run that fails, naming the agent, when one dies.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { handshakeStatus } from './agentTestSupport.ts';
import type { RunSummary } from '../run/summary.ts';
import { makeNetnsHosts, netnsAvailable, removeNetnsHosts, type NetnsHost } from './netnsTestSupport.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(REPO, 'bin', 'payfleet.mjs');
const SECRET = 'agents-test-secret-0123456789';
const ENV = { ...process.env, PAYFLEET_BROKER_SECRET: SECRET };

const dirs: string[] = [];
const children: ChildProcess[] = [];
let hosts: NetnsHost[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  removeNetnsHosts(hosts);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function runDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'payfleet-agents-'));
  dirs.push(dir);
  return dir;
}

interface Started {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

/** `payfleet …` as a child process (in a namespace when given), its output kept. */
function payfleet(args: string[], netns?: string): Started {
  const command = netns ? ['ip', ['netns', 'exec', netns, process.execPath, BIN, ...args]] as const : [process.execPath, [BIN, ...args]] as const;
  const child = spawn(command[0], [...command[1]], { env: ENV, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => text, exit };
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs: number, output: () => string): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`${what}: not within ${timeoutMs} ms; output so far:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The coordinator's ws:// URL, from the line it prints while it waits. */
function agentUrlOf(coordinator: Started): Promise<string> {
  return waitFor('the coordinator printing its ws:// URL', () => /agents: waiting for \d+ at (ws:\/\/\S+)/.exec(coordinator.output())?.[1], 30_000, coordinator.output);
}


describe('a run over two agents', () => {
  const inNamespaces = netnsAvailable();

  it(`quickstart ×60 over two payfleet agents (${inNamespaces ? 'each in its own network namespace' : 'plain processes: not root, or no ip netns'}) ends OK, nothing lost; a client without the token is refused`, async () => {
    if (inNamespaces) hosts = makeNetnsHosts(`pfa${process.pid % 100_000}n`, 200 + (process.pid % 50), 2);
    const listenHost = inNamespaces ? hosts[0]!.gateway : '127.0.0.1';
    const out = runDir();
    const coordinator = payfleet(['run', 'scenarios/quickstart.yaml', '--mode', 'mqtt', '--agents', '2', '--listen', `${listenHost}:0`, '--time-scale', '60', '--out', out, '--quiet']);
    const url = await agentUrlOf(coordinator);
    expect(url.startsWith(`ws://${listenHost}:`)).toBe(true);

    // No token, or a token from another secret: refused and logged; the run goes on.
    expect(await handshakeStatus(url, {})).toBe(401);
    expect(await handshakeStatus(url, { authorization: 'Bearer not-the-token' })).toBe(401);
    await waitFor('the refusal logged', () => (coordinator.output().includes('refused: no valid token') ? true : undefined), 5_000, coordinator.output);

    const agents = [0, 1].map((i) => payfleet(['agent', '--coordinator', url, '--name', `agent-${i}`, '--work-dir', join(out, `agent-${i}`)], inNamespaces ? hosts[i]!.name : undefined));
    const code = await coordinator.exit;
    expect(code, coordinator.output()).toBe(0);
    for (const agent of agents) {
      expect(await agent.exit, agent.output()).toBe(0);
      expect(agent.output()).toContain('the coordinator ended the run');
    }

    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as RunSummary;
    expect(summary.ok).toBe(true);
    expect(summary.ledger.lost).toBe(0);
    expect(summary.ledger.duplicated).toBe(0);
    expect(summary.remittance.pendingAtEnd).toBe(0);
    expect(summary.orders.approved).toBeGreaterThan(0);
    const placed = summary.agents!;
    expect(placed.map((a) => a.name).sort()).toEqual(['agent-0', 'agent-1']);
    expect(placed.reduce((sum, a) => sum + a.terminals, 0)).toBe(summary.terminals);
    expect(placed.flatMap((a) => a.servers).sort()).toEqual(['0', '1']);
    for (const agent of placed) expect(agent.peakRssBytes).toBeGreaterThan(0);
    // Each agent's connection came from its own namespace.
    if (inNamespaces) expect(placed.map((a) => a.address).sort()).toEqual(hosts.map((h) => h.address).sort());
    // The children's logs were shipped to the coordinator's run directory (no shared filesystem assumed).
    for (const name of ['worker-0', 'worker-1', 'server-0', 'server-1']) expect(readFileSync(join(out, 'logs', `${name}.log`), 'utf8').length, name).toBeGreaterThan(0);
    expect(readFileSync(join(out, 'logs', 'server-0.log'), 'utf8')).toContain('ready on');
  }, 180_000);
});

// Forty terminals for four simulated minutes at ×30: a server crash and a partition, both on servers an agent hosts.
const FAULTS_SCENARIO = `
name: agent-faults
seed: 5
duration: 4m
drain: 6m
crypto: ed25519
population:
  terminals: 40
  shards: 2
  means: [{ name: wallet, kind: virtualWallet, openingBalanceMinor: 30000 }]
  apps: [{ name: shop, type: telepayment, ordersPerHour: 30, amount: { uniformMinor: [100, 900] } }]
faults:
  - { at: 1m, kind: serverCrash, shard: 0, restartAfter: 20s }
  - { at: 2m, kind: partition, shard: 1, duration: 30s }
`;

describe('faults and failures over agents', () => {
  it('the agents apply the scenario faults to the servers they host (SIGKILL and restart, SIGSTOP/SIGCONT); the run ends OK', async () => {
    const out = runDir();
    const file = join(out, 'faults.yaml');
    writeFileSync(file, FAULTS_SCENARIO);
    const coordinator = payfleet(['run', file, '--mode', 'mqtt', '--agents', '2', '--time-scale', '30', '--out', join(out, 'run'), '--quiet']);
    const url = await agentUrlOf(coordinator);
    const agents = [0, 1].map((i) => payfleet(['agent', '--coordinator', url, '--name', `fault-agent-${i}`, '--capacity', '100', '--work-dir', join(out, `agent-${i}`)]));
    expect(await coordinator.exit, coordinator.output()).toBe(0);
    for (const agent of agents) expect(await agent.exit, agent.output()).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'run', 'summary.json'), 'utf8')) as RunSummary;
    expect(summary.ok).toBe(true);
    expect(summary.faults.serverCrashes).toBe(1);
    expect(summary.faults.partitions).toBe(1);
    expect(summary.ledger.lost).toBe(0);
    // The crashed server was started twice, on its agent; its log (shipped here) says so.
    expect(readFileSync(join(out, 'run', 'logs', 'server-0.log'), 'utf8')).toContain('--- start 2');
  }, 120_000);

  it('an agent that dies mid-run fails the run, naming it; the other agent is let go', async () => {
    const out = runDir();
    const file = join(out, 'faults.yaml');
    writeFileSync(file, FAULTS_SCENARIO.replace(/faults:[\s\S]*$/, ''));
    const coordinator = payfleet(['run', file, '--mode', 'mqtt', '--agents', '2', '--time-scale', '10', '--out', join(out, 'run'), '--quiet']);
    const url = await agentUrlOf(coordinator);
    const agents = [0, 1].map((i) => payfleet(['agent', '--coordinator', url, '--name', `doomed-${i}`, '--capacity', '100', '--work-dir', join(out, `agent-${i}`)]));
    await waitFor('the workers ready', () => ((coordinator.output().match(/endpoints connected/g) ?? []).length >= 2 ? true : undefined), 60_000, coordinator.output);
    agents[1]!.child.kill('SIGKILL');
    expect(await coordinator.exit, coordinator.output()).toBe(1);
    expect(coordinator.output()).toMatch(/agent doomed-1 \(host \S+\) was lost mid-run: its connection closed \(\d+\); it held workers \d+, servers \S+/);
    expect(await agents[0]!.exit, agents[0]!.output()).toBe(0);
    expect(existsSync(join(out, 'run', 'summary.json'))).toBe(false);
  }, 120_000);
});
