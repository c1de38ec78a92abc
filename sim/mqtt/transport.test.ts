// The one worker transport, tested both ways (a worker forked here over IPC; a worker an agent forked, over the
// agent's WebSocket), and the agent endpoint's door: the token, the wait, an agent lost.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { handshakeStatus } from './agentTestSupport.ts';
import { runAgent, type AgentOutcome } from './agent.ts';
import { AgentHub, type AgentLink } from './agentHub.ts';
import { agentTokenFor } from './agentProtocol.ts';
import type { FromWorker } from './protocol.ts';
import { IpcWorkerTransport, type WorkerTransport } from './transport.ts';

const SECRET = 'transport-test-secret';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'payfleet-transport-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * The same exchange whatever the transport: a bench command before `init` is a harness error, which the worker
 * reports (`error`) and then exits 1. Both directions of the channel and the exit are seen.
 */
async function benchBeforeInit(transport: WorkerTransport): Promise<{ message: FromWorker; code: number | null }> {
  const message = new Promise<FromWorker>((resolve) => transport.onMessage(resolve));
  const exit = new Promise<number | null>((resolve) => transport.onExit((code) => resolve(code)));
  transport.send({ type: 'bench', command: { id: 1, kind: 'probe' } });
  return { message: await message, code: await exit };
}

async function startHub(logs: string[], lost: Array<{ agent: AgentLink; why: string }> = []): Promise<AgentHub> {
  const hub = await AgentHub.listen({ host: '127.0.0.1', port: 0, secret: SECRET, expected: 1, logDir: tempDir(), log: (line) => logs.push(line), onAgentLost: (agent, why) => lost.push({ agent, why }) });
  cleanups.push(() => hub.close());
  return hub;
}

function startAgent(hub: AgentHub, name: string, signal?: AbortSignal): Promise<AgentOutcome> {
  return runAgent({ coordinatorUrl: hub.url, secret: SECRET, name, capacity: 100, connectWaitMs: 5_000, log: () => undefined, signal });
}


describe('WorkerTransport', () => {
  it('IPC: a worker forked here answers and exits through the transport', async () => {
    const { message, code } = await benchBeforeInit(new IpcWorkerTransport(0, tempDir()));
    expect(message.type).toBe('error');
    expect(message.type === 'error' && message.message).toContain('bench command probe before init');
    expect(code).toBe(1);
  }, 20_000);

  it("agent WebSocket: the same exchange with a worker an agent forked", async () => {
    const logs: string[] = [];
    const hub = await startHub(logs);
    const agentDone = startAgent(hub, 'agent-t');
    const [agent] = await hub.waitForAgents(10_000);
    expect(agent!.name).toBe('agent-t');
    const transport = agent!.placeWorker(0, 0);
    const { message, code } = await benchBeforeInit(transport);
    expect(message.type).toBe('error');
    expect(message.type === 'error' && message.message).toContain('bench command probe before init');
    expect(code).toBe(1);
    expect(transport.pid).toBeGreaterThan(0);
    await hub.close();
    expect((await agentDone).kind).toBe('done');
  }, 20_000);
});

describe('AgentHub', () => {
  it('refuses a connection without a valid token (401, logged) and still takes the agents of the run', async () => {
    const logs: string[] = [];
    const hub = await startHub(logs);
    expect(await handshakeStatus(hub.url, {})).toBe(401);
    expect(await handshakeStatus(hub.url, { authorization: `Bearer ${agentTokenFor('another-secret')}` })).toBe(401);
    expect(logs.filter((line) => line.includes('refused: no valid token'))).toHaveLength(2);
    const agentDone = startAgent(hub, 'agent-ok');
    expect((await hub.waitForAgents(10_000)).map((a) => a.name)).toEqual(['agent-ok']);
    await hub.close();
    expect((await agentDone).kind).toBe('done');
  }, 20_000);

  it('gives up waiting after the timeout, saying how many came and how to start one', async () => {
    const hub = await startHub([]);
    await expect(hub.waitForAgents(200)).rejects.toThrow(/0 of 1 agent\(s\) connected to ws:\/\/127\.0\.0\.1:\d+ within 0 s; start one on each host with: payfleet agent --coordinator ws:\/\//);
  });

  it('reports an agent lost mid-run, by name, and the agent stops its children', async () => {
    const lost: Array<{ agent: AgentLink; why: string }> = [];
    const hub = await startHub([], lost);
    const stop = new AbortController();
    const agentDone = startAgent(hub, 'agent-lost', stop.signal);
    const [agent] = await hub.waitForAgents(10_000);
    const transport = agent!.placeWorker(0, 0);
    await new Promise<void>((resolve) => {
      const poll = (): void => (transport.pid ? resolve() : void setTimeout(poll, 10));
      poll();
    });
    stop.abort('SIGTERM');
    expect((await agentDone).kind).toBe('stopped');
    await transport.exited;
    expect(lost.map((l) => l.agent.name)).toEqual(['agent-lost']);
    expect(lost[0]!.why).toMatch(/connection closed/);
    // The worker the agent ran is gone with it.
    expect(() => process.kill(transport.pid!, 0)).toThrow();
  }, 20_000);

  it('an agent that loses the coordinator stops its children and says so', async () => {
    const hub = await startHub([], []);
    const agentDone = startAgent(hub, 'agent-orphan');
    const [agent] = await hub.waitForAgents(10_000);
    const transport = agent!.placeWorker(0, 0);
    await new Promise<void>((resolve) => {
      const poll = (): void => (transport.pid ? resolve() : void setTimeout(poll, 10));
      poll();
    });
    agent!.terminate();
    const outcome = await agentDone;
    expect(outcome.kind).toBe('lost');
    expect(outcome.detail).toMatch(/connection to the coordinator closed \(1006\); every child stopped/);
    expect(() => process.kill(transport.pid!, 0)).toThrow();
  }, 20_000);
});
