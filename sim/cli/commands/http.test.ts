import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '../../../bin/payfleet.mjs');
const SCENARIO = join(import.meta.dirname, '../../../load/k6/shared-means.yaml');

describe('payfleet http', () => {
  it('serves the scenario means on the address it prints, and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [BIN, 'http', SCENARIO, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /listening on (http:\/\/\S+)/.exec(out);
        if (match) resolve(match[1]!);
      });
      child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    const health = await (await fetch(`${url}/v1/health`)).json();
    expect(health).toEqual({ status: 'ok', shards: 2, store: 'memory', scheme: 'ed25519' });
    const means = await (await fetch(`${url}/v1/means/m199`)).json();
    expect(means).toMatchObject({ meansId: 'm199', availableMinor: 500_000 });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain('payfleet http: stopped');
  });
});
