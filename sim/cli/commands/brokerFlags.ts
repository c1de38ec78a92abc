// Goal: the flags that more than one command reads the same way: a broker URL, the run's secret, a TCP port.
// Method: each check takes the flag's parsed value and throws UsageError naming the flag; the secret comes from
// --secret where a command has it, else from PAYFLEET_BROKER_SECRET (a secret on argv is readable through ps).

import { UsageError, type FlagSpec } from '../args.ts';

export const BROKER_PROTOCOLS = ['mqtt:', 'mqtts:', 'tcp:', 'ws:', 'wss:'] as const;
export const MAX_PORT = 65_535;

/** A TCP port flag: 0 asks the system for a free one. */
export function portFlag(help: string, defaultText?: string) {
  return { kind: 'int', min: 0, max: MAX_PORT, help, defaultText } as const satisfies FlagSpec;
}

/** Checks a broker URL (mqtt://, mqtts://, tcp://, ws:// or wss://, with a host); returns it. */
export function brokerUrlOf(flag: string, text: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || !(BROKER_PROTOCOLS as readonly string[]).includes(url.protocol) || url.hostname === '') {
    throw new UsageError(`--${flag}: expected a broker URL such as mqtt://127.0.0.1:1883 (mqtt, mqtts, tcp, ws or wss), got '${text}'`, flag);
  }
  return text;
}

/**
 * Checks a list of broker URLs separated by commas (one is a list too), each as `brokerUrlOf`; returns them joined
 * by commas without blanks, as broker/linkPolicy.ts reads them. A URL given twice is refused: an endpoint would
 * "fail over" to the broker it just lost, and a server would hold two connections to one broker.
 */
export function brokerUrlsOf(flag: string, text: string): string {
  const urls = text.split(',').map((u) => u.trim());
  if (urls.some((u) => u === '')) throw new UsageError(`--${flag}: expected broker URLs separated by commas, such as mqtt://a:1883,mqtt://b:1883, got '${text}'`, flag);
  for (const url of urls) brokerUrlOf(flag, url);
  const twice = urls.find((u, i) => urls.indexOf(u) !== i);
  if (twice) throw new UsageError(`--${flag}: ${twice} is given twice`, flag);
  return urls.join(',');
}

/** Checks a Redis URL (redis:// or rediss://, with a host); returns it. */
export function redisUrlOf(flag: string, text: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
    throw new UsageError(`--${flag}: expected a Redis URL such as redis://127.0.0.1:6379, got '${text}'`, flag);
  }
  return text;
}

/** The run's secret: --secret when given, else PAYFLEET_BROKER_SECRET; undefined when neither is set. */
export function secretOf(given: string | undefined, env: Record<string, string | undefined>): string | undefined {
  return given ?? (env.PAYFLEET_BROKER_SECRET || undefined);
}
