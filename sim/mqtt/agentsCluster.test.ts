// Goal: the bar for runs over hosts, on one machine: redis-server (Debian package redis-server), two
// `payfleet broker --cluster` processes, a coordinator with `--agents 2` (terminals on broker A, servers on broker B,
// so every payment crosses Redis) and two `payfleet agent` processes; broker A is SIGKILLed 15 s after the workers
// are connected, its terminals fail over to B, and the quickstart at ×60 still ends OK: exit 0, nothing lost,
// nothing twice, nothing pending, and `agents` lists both.
// Method: the CLI as a user runs it (child processes), Redis from broker/redisServer.ts, the brokers as
// ManagedProcesses; the agents as plain processes here (agents.test.ts runs them in network namespaces).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import type { RunSummary } from '../run/summary.ts';
import { startRedis, type RunningRedis } from '../../broker/redisServer.ts';
import { ManagedProcess } from './processes.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SECRET = 'agents-cluster-test-secret';
const ENV = { ...process.env, PAYFLEET_BROKER_SECRET: SECRET };
const root = mkdtempSync(join(tmpdir(), 'payfleet-agents-cluster-'));
const children: ChildProcess[] = [];
const brokers: ManagedProcess[] = [];
let redis: RunningRedis | undefined;

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(brokers.map((b) => b.stop()));
  await redis?.close();
  rmSync(root, { recursive: true, force: true });
});

function payfleet(args: string[]): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [join(REPO, 'bin', 'payfleet.mjs'), ...args], { env: ENV, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { child, output: () => text, exit: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}

async function until<T>(what: string, probe: () => T | undefined, output: () => string, timeoutMs = 60_000): Promise<T> {
  for (const end = Date.now() + timeoutMs; ; ) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('Redis, two clustered brokers, a coordinator with --agents 2 and two agents: quickstart ×60 ends OK with broker A SIGKILLed mid-run', async () => {
  redis = await startRedis(join(root, 'redis'));
  const urls: string[] = [];
  for (const name of ['broker-a', 'broker-b']) {
    const broker = new ManagedProcess({ name, args: ['broker', '--port', '0', '--cluster', redis.url], env: ENV, ready: /listening on (mqtt:\/\/\S+)/, logDir: join(root, 'brokers') });
    brokers.push(broker);
    urls.push((await broker.start())[1]!);
  }
  const out = join(root, 'run');
  const coordinator = payfleet(['run', 'scenarios/quickstart.yaml', '--mode', 'mqtt', '--time-scale', '60', '--agents', '2', '--broker', urls[0]!, '--server-broker', urls[1]!, '--out', out, '--quiet']);
  const url = await until('the ws:// URL', () => /agents: waiting for 2 at (ws:\/\/\S+)/.exec(coordinator.output())?.[1], coordinator.output);
  const agents = [0, 1].map((i) => payfleet(['agent', '--coordinator', url, '--name', `cluster-agent-${i}`, '--work-dir', join(root, `agent-${i}`)]));
  await until('both workers connected', () => ((coordinator.output().match(/endpoints connected/g) ?? []).length >= 2 ? true : undefined), coordinator.output, 90_000);
  await new Promise((r) => setTimeout(r, 15_000));
  await brokers[0]!.kill();

  expect(await coordinator.exit, coordinator.output()).toBe(0);
  for (const agent of agents) expect(await agent.exit, agent.output()).toBe(0);
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as RunSummary;
  expect(summary.ok).toBe(true);
  expect(summary.ledger.lost).toBe(0);
  expect(summary.ledger.duplicated).toBe(0);
  expect(summary.remittance.pendingAtEnd).toBe(0);
  expect(summary.agents!.map((a) => a.name).sort()).toEqual(['cluster-agent-0', 'cluster-agent-1']);
  // Broker A's terminals moved to B.
  expect(summary.network.failovers ?? 0, JSON.stringify(summary.network)).toBeGreaterThan(0);
}, 240_000);
