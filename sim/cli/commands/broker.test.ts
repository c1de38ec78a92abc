import { describe, it, expect } from 'vitest';
import { createServer, type AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { eventually, rawClient } from '../../../broker/testSupport.ts';
import type { CliIo } from '../command.ts';
import { main } from '../main.ts';
import { brokerCommand } from './broker.ts';

const BIN = join(import.meta.dirname, '../../../bin/payfleet.mjs');

function capture(env: Record<string, string | undefined> = {}, signal?: AbortSignal) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l), env, ...(signal ? { signal } : {}) };
  return { io, out, err };
}

/** `payfleet broker …` through the CLI's main, as the command line runs it. */
const broker = (argv: string[], io: CliIo) => main(['broker', ...argv], io);

describe('payfleet broker', () => {
  it('prints its help', async () => {
    const { io, out } = capture();
    expect(await broker(['--help'], io)).toBe(0);
    expect(out).toEqual([brokerCommand.help()]);
    for (const flag of ['--host', '--port', '--ws-port', '--secret', '--max-message-bytes', '-h, --help']) expect(out[0]).toContain(flag);
    expect(out[0]).toContain('$PAYFLEET_BROKER_SECRET');
  });

  it.each([
    [['--bogus'], /^payfleet broker: unknown flag --bogus/],
    [['--port'], /^payfleet broker: --port: expected a value/],
    [['--port', '70000'], /^payfleet broker: --port: expected an integer from 0 to 65535, got '70000'/],
    [['--port=70000'], /^payfleet broker: --port: expected an integer from 0 to 65535, got '70000'/],
    [['--port', '1.5'], /--port: expected an integer/],
    [['--ws-port', '-1'], /--ws-port: expected a value, got the flag-like '-1' \(a value that begins with '-' is given as --ws-port=-1\)/],
    [['--ws-port=-1'], /--ws-port: expected an integer from 0 to 65535, got '-1'/],
    [['--max-message-bytes', '0'], /--max-message-bytes: expected an integer from 1/],
    [['--secret', ''], /--secret: expected a value, got ''/],
    [['--host='], /--host: expected a value, got ''/],
    [['extra'], /unexpected argument 'extra'/],
  ])('refuses %j with exit status 2, naming the flag, and points to --help', async (argv, message) => {
    const { io, err } = capture();
    expect(await broker(argv, io)).toBe(2);
    expect(err.join('\n')).toMatch(message);
    expect(err.at(-1)).toBe('Run `payfleet broker --help` for the options.');
  });

  it('exits 1 when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    const { io, err } = capture({ PAYFLEET_BROKER_SECRET: 'x' });
    expect(await broker(['--port', String(port)], io)).toBe(1);
    expect(err.join('\n')).toMatch(/cannot listen on 127.0.0.1:\d+: .*EADDRINUSE/);
    blocker.close();
  });

  it('runs with the secret from the environment until stopped, accepting only its credentials', async () => {
    const stop = new AbortController();
    const { io, out } = capture({ PAYFLEET_BROKER_SECRET: 'run-secret' }, stop.signal);
    const running = broker(['--port=0', '--ws-port', '0'], io);
    await eventually(() => out.some((l) => l.includes('listening')), 'the listening line');
    const url = /mqtt:\/\/[\d.]+:\d+/.exec(out.join('\n'))![0];
    expect(out.join('\n')).toMatch(/and ws:\/\/127\.0\.0\.1:\d+/);
    const client = await rawClient(url, 'run-secret', { role: 'terminal', id: 'T1' });
    expect(client.connected).toBe(true);
    await expect(rawClient(url, 'other-secret', { role: 'terminal', id: 'T2' })).rejects.toThrow(/Bad username or password/);
    stop.abort();
    expect(await running).toBe(0);
    expect(out.at(-1)).toMatch(/stopped \(abort\); .*"connect.badPassword":1/);
    client.end(true);
  });

  it('makes and prints a secret when none is given', async () => {
    const stop = new AbortController();
    const { io, out } = capture({}, stop.signal);
    const running = broker(['--port', '0'], io);
    await eventually(() => out.some((l) => l.includes('listening')), 'the listening line');
    // newSecret is 32 random bytes in hex (8c39203), so a secret pasted after --secret never reads as a flag.
    expect(out[0]).toMatch(/^payfleet broker: secret [0-9a-f]{64}$/);
    stop.abort();
    expect(await running).toBe(0);
  });

  it('stops on SIGTERM as its own process (bin/payfleet.mjs broker)', async () => {
    const child = spawn(process.execPath, [BIN, 'broker', '--port', '0'], {
      env: { ...process.env, PAYFLEET_BROKER_SECRET: 'proc-secret' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    await eventually(() => stdout.includes('listening'), 'the listening line', 30_000);
    const url = /mqtt:\/\/[\d.]+:\d+/.exec(stdout)![0];
    const client = await rawClient(url, 'proc-secret', { role: 'pos', id: 'P1' });
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(stdout).toMatch(/stopped \(SIGTERM\)/);
    client.end(true);
  });
});
