// Goal: a real Redis for the tests of clustered brokers (`payfleet broker --cluster`): redis-server from Debian's
// package, started on a free port in a directory of its own, gone after.
// Method: spawn `redis-server` with its whole configuration on the command line (no persistence: the cluster keeps
// nothing in Redis, it only passes messages through it), wait until it answers PING on its port, and stop it with
// SIGTERM (SIGKILL if it lingers). A missing binary is an error naming the Debian package, never a skip.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './mosquitto.ts';

export const REDIS_BINARY = '/usr/bin/redis-server';

export interface RunningRedis {
  url: string;
  port: number;
  pid: number | undefined;
  close(): Promise<void>;
}

/** True once Redis answers PING with +PONG on host:port. */
function answersPing(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let reply = '';
    socket.setTimeout(1_000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.startsWith('+PONG'));
      }
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startRedis(dir: string, options: { host?: string; startTimeoutMs?: number } = {}): Promise<RunningRedis> {
  if (!existsSync(REDIS_BINARY)) throw new Error(`redisMissing: ${REDIS_BINARY} not found; install the Debian package redis-server`);
  const host = options.host ?? '127.0.0.1';
  const port = await freePort(host);
  mkdirSync(dir, { recursive: true });
  const args = ['--port', String(port), '--bind', host, '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--logfile', 'redis.log'];
  const child: ChildProcess = spawn(REDIS_BINARY, args, { stdio: 'ignore' });
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code) => {
      exitCode = code;
      resolve();
    });
    child.once('error', () => {
      exitCode = -1;
      resolve();
    });
  });
  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  while (!(await answersPing(host, port))) {
    if (exitCode !== undefined) throw new Error(`redisExited: ${REDIS_BINARY} exited with ${exitCode} (see ${dir}/redis.log)`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redisTimeout: no answer on ${host}:${port} (see ${dir}/redis.log)`);
    }
    await sleep(25);
  }
  return {
    url: `redis://${host}:${port}`,
    port,
    pid: child.pid,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const lingering = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(lingering);
    },
  };
}
