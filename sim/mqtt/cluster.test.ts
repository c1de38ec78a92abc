// Goal: an mqtt run on two brokers clustered through a real Redis, with every terminal on broker A and every
// payment server on broker B, so that every request and every answer crosses Redis: it ends OK with nothing lost,
// nothing doubled and nothing pending; and when broker A is SIGKILLed in the middle, its terminals fail over to B
// and the run still ends OK.
// Method: redis-server (Debian package redis-server) on a free port in a temp dir; two `payfleet broker --cluster`
// processes; the quickstart scenario through the CLI (`payfleet run … --broker A --server-broker B`) with a normal
// local coordinator, at ×60 and an eleven-minute safety phase (the south's outage at 10m still begins) to keep the suite short (the full quickstart was run
// by hand the same way: see docs/sizing.md). Where the connections went is read from each broker's own counts,
// printed when it stops. The drain time is raised from the quickstart's 15 minutes to 45: a run that drains stops
// at once either way, and on a loaded machine the terminals that failed over had not all finished within 15 s of
// wall time (their reconnections alone took 30-40 s at load average 12-16), which is the test bed, not the system.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../cli/main.ts';
import type { RunSummary } from '../run/summary.ts';
import { newSecret } from '../../broker/credentials.ts';
import { startRedis, type RunningRedis } from '../../broker/redisServer.ts';
import { ManagedProcess } from './processes.ts';

const secret = newSecret();
const root = mkdtempSync(join(tmpdir(), 'payfleet-cluster-run-'));
let redis: RunningRedis;
let brokers: ManagedProcess[] = [];

beforeAll(async () => {
  redis = await startRedis(join(root, 'redis'));
});

afterAll(async () => {
  await Promise.all(brokers.map((b) => b.stop()));
  await redis?.close();
  if (!process.env.KEEP) rmSync(root, { recursive: true, force: true });
});

/** Starts a clustered broker as its own process; resolves with it and its URL. */
async function clusteredBroker(name: string, logDir: string): Promise<{ process: ManagedProcess; url: string }> {
  const broker = new ManagedProcess({
    name,
    args: ['broker', '--port', '0', '--cluster', redis.url],
    env: { ...process.env, PAYFLEET_BROKER_SECRET: secret },
    ready: /listening on (mqtt:\/\/\S+)/,
    logDir,
  });
  brokers.push(broker);
  const match = await broker.start();
  return { process: broker, url: match[1]! };
}

/** Connections a stopped broker accepted in its life, from the counts it prints when it stops. */
function connectionsOf(logDir: string, name: string): number {
  const stopped = /stopped \([^)]*\); (\{.*\})/.exec(readFileSync(join(logDir, `${name}.log`), 'utf8'));
  if (!stopped) throw new Error(`${name} printed no counts when it stopped`);
  return (JSON.parse(stopped[1]!) as { connections: number }).connections;
}

/** Runs the quickstart through the CLI on A (terminals) and B (servers); `onReady` fires once every worker is connected. */
async function runQuickstart(dir: string, a: string, b: string, onReady?: () => void) {
  const lines: string[] = [];
  let readyWorkers = 0;
  const io = {
    out: (line: string) => {
      lines.push(line);
      if (/worker \d+: \d+\/\d+ endpoints connected/.test(line) && ++readyWorkers === 2) onReady?.();
    },
    err: (line: string) => lines.push(line),
    env: { ...process.env, PAYFLEET_BROKER_SECRET: secret },
    signal: new AbortController().signal,
  };
  const scenario = join(root, 'quickstart-long-drain.yaml');
  const text = readFileSync('scenarios/quickstart.yaml', 'utf8');
  if (!/^drain: 15m$/m.test(text)) throw new Error('scenarios/quickstart.yaml no longer has "drain: 15m": update this test');
  writeFileSync(scenario, text.replace(/^drain: 15m$/m, 'drain: 45m'));
  const args = ['run', scenario, '--mode', 'mqtt', '--time-scale', '60', '--duration', '11m', '--broker', a, '--server-broker', b, '--out', dir, '--quiet'];
  const status = await main(args, io);
  if (!existsSync(join(dir, 'summary.json'))) throw new Error(`exit ${status}, no summary.json:\n${lines.join('\n')}`);
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as RunSummary;
  return { status, summary, context: lines.join('\n') };
}

function expectOk(run: { status: number; summary: RunSummary; context: string }): void {
  const { summary } = run;
  const context = `${run.context}\n${JSON.stringify(summary.network)}`;
  expect(run.status, context).toBe(0);
  expect(summary.ok, context).toBe(true);
  expect(summary.ledger.lost, context).toBe(0);
  expect(summary.ledger.duplicated, context).toBe(0);
  expect(summary.remittance.pendingAtEnd, context).toBe(0);
  expect(summary.ledger.postedAmountMinor, context).toBe(summary.ledger.approvedAmountMinor);
  // Remote payments really went terminal → A → Redis → B → server and back.
  expect(summary.orders.byPath.remote ?? 0, context).toBeGreaterThan(0);
}

describe('an mqtt run on brokers clustered through Redis', () => {
  it('carries every payment across Redis: terminals on A, servers on B, ends OK with nothing lost', async () => {
    const dir = join(root, 'across');
    const logDir = join(dir, 'broker-logs');
    const a = await clusteredBroker('broker-a', logDir);
    const b = await clusteredBroker('broker-b', logDir);
    const run = await runQuickstart(join(dir, 'run'), a.url, b.url);
    await Promise.all([a.process.stop(), b.process.stop()]);
    expectOk(run);
    // Every terminal and POS on A; on B only the two servers, the harness and the adversary — and any endpoint
    // whose attempt on A failed under this machine's load (it moves on to B: counted as a failover).
    expect(connectionsOf(logDir, 'broker-a')).toBeGreaterThanOrEqual(306);
    expect(connectionsOf(logDir, 'broker-b')).toBeLessThanOrEqual(4 + run.summary.network.failovers!);
  }, 120_000);

  it('fails the terminals of a SIGKILLed broker A over to B, and still ends OK', async () => {
    const dir = join(root, 'failover');
    const logDir = join(dir, 'broker-logs');
    const a = await clusteredBroker('broker-a', logDir);
    const b = await clusteredBroker('broker-b', logDir);
    let killed: Promise<void> | undefined;
    // A minute and a half of run time after every worker is connected: payments are under way on A.
    const run = await runQuickstart(join(dir, 'run'), a.url, b.url, () => {
      setTimeout(() => (killed = a.process.kill()), 1_500);
    });
    await killed;
    await b.process.stop();
    expectOk(run);
    expect(a.process.alive).toBe(false);
    // Every terminal (and POS) left A for B at least once: those in coverage at once, the others when it returned.
    expect(run.summary.network.failovers, `${run.context}\n${JSON.stringify(run.summary.network)}`).toBeGreaterThanOrEqual(300);
    expect(connectionsOf(logDir, 'broker-b')).toBeGreaterThanOrEqual(306);
  }, 120_000);
});
