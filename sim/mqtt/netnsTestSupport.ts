// Goal: for tests of runs spread over hosts: Linux network namespaces, each joined to this one by a veth pair, so
// each agent has its own port space and reaches the coordinator over a real (virtual) link — when the test runs
// as root and `ip netns` works; plain processes otherwise (said by `available`).
// Method: `ip netns add`, `ip link add … type veth peer …`, one /24 per namespace (this side .1, theirs .2), a
// default route back through this side. A namespace reaches this host's .1 address of any pair (local delivery),
// so one --listen address serves every namespace. `remove` deletes the namespaces (their veth ends go with them).

import { execFileSync } from 'node:child_process';

export interface NetnsHost {
  /** The namespace's name, for `ip netns exec NAME …`. */
  name: string;
  /** Its address, as the coordinator sees its connections come from. */
  address: string;
  /** This host's end of its link. */
  gateway: string;
}

/** Whether namespaces can be made here: root, and `ip netns` works. */
export function netnsAvailable(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Makes `count` namespaces named `<prefix><i>` on 10.<subnet>.<i+1>.0/24. Interface names stay within Linux's
 * 15 characters. Anything half-made is removed when a step fails.
 */
export function makeNetnsHosts(prefix: string, subnet: number, count: number): NetnsHost[] {
  const hosts: NetnsHost[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const name = `${prefix}${i}`;
      const outer = `${prefix.slice(0, 10)}o${i}`;
      const inner = `${prefix.slice(0, 10)}i${i}`;
      const gateway = `10.${subnet}.${i + 1}.1`;
      const address = `10.${subnet}.${i + 1}.2`;
      ip('netns', 'add', name);
      hosts.push({ name, address, gateway });
      ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner);
      ip('link', 'set', inner, 'netns', name);
      ip('addr', 'add', `${gateway}/24`, 'dev', outer);
      ip('link', 'set', outer, 'up');
      ip('-n', name, 'addr', 'add', `${address}/24`, 'dev', inner);
      ip('-n', name, 'link', 'set', inner, 'up');
      ip('-n', name, 'link', 'set', 'lo', 'up');
      ip('-n', name, 'route', 'add', 'default', 'via', gateway);
    }
    return hosts;
  } catch (error) {
    removeNetnsHosts(hosts);
    throw error;
  }
}

/** Deletes the namespaces (their veth pairs go with them). */
export function removeNetnsHosts(hosts: readonly NetnsHost[]): void {
  for (const host of hosts) {
    try {
      ip('netns', 'del', host.name);
    } catch {
      // Already gone.
    }
  }
}
