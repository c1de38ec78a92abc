// A payfleet child outlives no parent: a process started by ManagedProcess stops by itself when the process that
// started it is SIGKILLed (its exit hook never runs), instead of serving on as an orphan (an agent killed mid-run).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'payfleet-orphan-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

it('a broker started by a ManagedProcess stops when its parent is SIGKILLed', async () => {
  const script = join(dir, 'parent.mts');
  writeFileSync(
    script,
    `import { ManagedProcess } from ${JSON.stringify(fileURLToPath(new URL('./processes.ts', import.meta.url)))};
const broker = new ManagedProcess({ name: 'broker', args: ['broker', '--port', '0'], ready: /listening on/, logDir: ${JSON.stringify(dir)}, env: { ...process.env, PAYFLEET_BROKER_SECRET: 'orphan-test' } });
await broker.start();
console.log('child ' + broker.pid);
setInterval(() => undefined, 1000);
`,
  );
  const parent = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  parent.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const childPid = await new Promise<number>((resolve, reject) => {
    const poll = setInterval(() => {
      const pid = /child (\d+)/.exec(output)?.[1];
      if (pid) {
        clearInterval(poll);
        resolve(Number(pid));
      }
    }, 20);
    parent.once('exit', (code) => reject(new Error(`parent exited (${code}) before its child was ready: ${output}`)));
  });
  expect(isAlive(childPid)).toBe(true);
  parent.kill('SIGKILL');
  const until = Date.now() + 10_000;
  while (isAlive(childPid) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  const orphanLeft = isAlive(childPid);
  if (orphanLeft) process.kill(childPid, 'SIGKILL');
  expect(orphanLeft, 'the broker outlived its parent').toBe(false);
}, 30_000);
