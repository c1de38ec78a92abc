import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../main.ts';
import { AgentHub } from '../../mqtt/agentHub.ts';

async function agentCli(argv: string[], env: Record<string, string | undefined>): Promise<{ status: number; text: string }> {
  const lines: string[] = [];
  const status = await main(['agent', ...argv], { out: (l) => lines.push(l), err: (l) => lines.push(l), env });
  return { status, text: lines.join('\n') };
}

/** A port nothing listens on (taken, then freed). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

describe('payfleet agent', () => {
  it('is exit status 2 without the secret or with a URL that is not the ws:// one a coordinator prints', async () => {
    expect(await agentCli(['--coordinator', 'ws://127.0.0.1:7400'], {})).toMatchObject({ status: 2, text: expect.stringMatching(/set PAYFLEET_BROKER_SECRET/) });
    expect(await agentCli(['--coordinator', 'mqtt://127.0.0.1:7400'], { PAYFLEET_BROKER_SECRET: 'k' })).toMatchObject({ status: 2, text: expect.stringMatching(/--coordinator: expected the URL the coordinator printed/) });
    expect(await agentCli(['--coordinator', 'ws://127.0.0.1'], { PAYFLEET_BROKER_SECRET: 'k' })).toMatchObject({ status: 2 });
    expect(await agentCli(['--coordinator', 'ws://127.0.0.1:7400', '--capacity', '0'], { PAYFLEET_BROKER_SECRET: 'k' })).toMatchObject({ status: 2, text: expect.stringMatching(/--capacity/) });
    expect(await agentCli([], { PAYFLEET_BROKER_SECRET: 'k' })).toMatchObject({ status: 2, text: expect.stringMatching(/--coordinator: required/) });
  });

  it('is exit status 2 when the coordinator refuses it (another secret), and 3 when no coordinator answers within --wait', async () => {
    const logDir = mkdtempSync(join(tmpdir(), 'payfleet-agent-cli-'));
    const logs: string[] = [];
    const hub = await AgentHub.listen({ host: '127.0.0.1', port: 0, secret: 'the-run-secret', expected: 1, logDir, log: (l) => logs.push(l), onAgentLost: () => undefined });
    try {
      const refused = await agentCli(['--coordinator', hub.url, '--capacity', '10'], { PAYFLEET_BROKER_SECRET: 'another-secret' });
      expect(refused.status).toBe(2);
      expect(refused.text).toMatch(/refused this agent: HTTP 401/);
      expect(logs.join('\n')).toMatch(/refused: no valid token/);
    } finally {
      await hub.close();
      rmSync(logDir, { recursive: true, force: true });
    }
    const unreachable = await agentCli(['--coordinator', `ws://127.0.0.1:${await closedPort()}`, '--capacity', '10', '--wait', '1s'], { PAYFLEET_BROKER_SECRET: 'k' });
    expect(unreachable.status).toBe(3);
    expect(unreachable.text).toMatch(/cannot reach the coordinator at ws:\/\/127\.0\.0\.1:\d+/);
  }, 20_000);

  it('says the capacity it takes from the host when none is given', async () => {
    const result = await agentCli(['--coordinator', `ws://127.0.0.1:${await closedPort()}`, '--wait', '1s'], { PAYFLEET_BROKER_SECRET: 'k' });
    expect(result.text).toMatch(/payfleet agent: capacity \d+ terminals \(fd limit (\d+|unknown), free memory \d+ MiB\)/);
  }, 20_000);
});
