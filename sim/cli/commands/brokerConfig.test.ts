// Goal: `payfleet broker-config` writes files a real Mosquitto starts with and that let exactly the run's
// identities in (with their ACL), carries the fleet's limits, and refuses bad input naming it without writing.
// Method: the command through the CLI's main; Mosquitto from Debian's package started on the written config (on a
// free port) and probed with raw mqtt.js clients holding issued credentials.

import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt from 'mqtt';
import { rawClient } from '../../../broker/testSupport.ts';
import { freePort, MOSQUITTO_BINARY } from '../../../broker/mosquitto.ts';
import { serverIdentity } from '../../../broker/topics.ts';
import type { CliIo } from '../command.ts';
import { main } from '../main.ts';

const root = mkdtempSync(join(tmpdir(), 'payfleet-broker-config-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const secret = 'broker-config-test-secret';

function capture(env: Record<string, string | undefined>) {
  const lines: string[] = [];
  const io: CliIo = { out: (l) => lines.push(l), err: (l) => lines.push(l), env };
  return { io, lines };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('payfleet broker-config', () => {
  it('writes files a Mosquitto starts with, letting in the run\'s identities with their ACL and the fleet\'s limits', async () => {
    if (!existsSync(MOSQUITTO_BINARY)) throw new Error(`${MOSQUITTO_BINARY} not found: install the Debian package mosquitto`);
    const out = join(root, 'ok');
    const port = await freePort();
    const { io, lines } = capture({ PAYFLEET_BROKER_SECRET: secret });
    const status = await main(['broker-config', 'scenarios/quickstart.yaml', '--kind', 'mosquitto', '--out', out, '--port', String(port), '--terminals', '40'], io);
    expect(status, lines.join('\n')).toBe(0);
    // 40 terminals, 6 POS, 2 servers, the harness: 49 identities, 50 connections (the adversary is the 50th).
    expect(lines.join('\n')).toMatch(/49 identities \(40 terminals, 6 POS, 2 payment servers, the harness\); max_connections 50/);
    const config = readFileSync(join(out, 'mosquitto.conf'), 'utf8');
    expect(config).toMatch(/^max_connections 50$/m);
    expect(config).toMatch(/^max_queued_messages 1000$/m);
    expect(config).toMatch(/^# `ulimit -n 114` or more/m);
    // Every setting line of the limits is preceded by its comment.
    const configLines = config.split('\n');
    for (const setting of ['max_connections', 'max_inflight_messages', 'max_queued_messages', 'set_tcp_nodelay']) {
      const at = configLines.findIndex((l) => l.startsWith(`${setting} `));
      expect(configLines[at - 1], setting).toMatch(/^#/);
    }
    const mosquitto = spawn(MOSQUITTO_BINARY, ['-c', join(out, 'mosquitto.conf')], { stdio: 'ignore' });
    try {
      for (let waited = 0; !(await accepts(port)); waited += 25) {
        if (waited > 10_000 || mosquitto.exitCode !== null) throw new Error(`mosquitto did not start on the written config (exit ${mosquitto.exitCode}): ${readFileSync(join(out, 'mosquitto.log'), 'utf8')}`);
        await sleep(25);
      }
      const url = `mqtt://127.0.0.1:${port}`;
      const terminal = await rawClient(url, secret, { role: 'terminal', id: 't39' });
      const server = await rawClient(url, secret, serverIdentity([0]));
      // The run's identities get in and their topics are granted (what the ACL refuses is broker/mosquitto.test.ts'
      // subject: the same aclFile); a terminal of a bigger fleet is unknown, an anonymous client refused.
      expect((await terminal.subscribeAsync('pf/v1/tm/t39/resp', { qos: 1 }))[0]!.qos).toBe(1);
      expect((await server.subscribeAsync('pf/v1/sd/0/req/+', { qos: 1 }))[0]!.qos).toBe(1);
      await expect(rawClient(url, secret, { role: 'terminal', id: 't40' })).rejects.toThrow();
      await expect(mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 })).rejects.toThrow();
      terminal.end(true);
      server.end(true);
    } finally {
      mosquitto.kill('SIGTERM');
    }
  }, 30_000);

  it.each([
    [['scenarios/quickstart.yaml', '--kind', 'mosquitto', '--out', 'X'], {}, /PAYFLEET_BROKER_SECRET: set it/],
    [['scenarios/quickstart.yaml', '--kind', 'rabbitmq', '--out', 'X'], { PAYFLEET_BROKER_SECRET: secret }, /--kind: expected mosquitto, got 'rabbitmq'/],
    [['scenarios/quickstart.yaml', '--kind', 'mosquitto'], { PAYFLEET_BROKER_SECRET: secret }, /--out/],
    [['scenarios/nope.yaml', '--kind', 'mosquitto', '--out', 'X'], { PAYFLEET_BROKER_SECRET: secret }, /nope\.yaml/],
  ])('refuses %j with exit 2, naming what is wrong, and writes nothing', async (argv, env, message) => {
    const out = join(root, 'bad');
    const { io, lines } = capture(env);
    const status = await main(['broker-config', ...argv.map((a) => (a === 'X' ? out : a))], io);
    expect(status).toBe(2);
    expect(lines.join('\n')).toMatch(message);
    expect(existsSync(out)).toBe(false);
  });
});
