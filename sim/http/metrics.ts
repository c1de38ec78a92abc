// Goal: the HTTP interface's figures in the Prometheus text exposition format (version 0.0.4), for
// `GET /metrics`: requests by route and status, their duration as a histogram, refusals by reason code,
// answers replayed for a repeated idempotency key, and requests in flight.
// Method: plain counters in maps keyed by their label values, written out in the text format by hand (the
// format is small, and a client library would be a dependency for a dozen lines). Label values are escaped as
// the format requires (backslash, double quote, newline).

/** Upper bounds of the duration histogram, in seconds. */
export const DURATION_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

export class HttpMetrics {
  private readonly requests = new Map<string, number>();
  private readonly durations = new Map<string, Histogram>();
  private readonly refusals = new Map<string, number>();
  private replays = 0;
  inFlight = 0;

  record(route: string, status: number, durationS: number, options: { code?: string; replayed?: boolean } = {}): void {
    const key = JSON.stringify([route, String(status)]);
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    let histogram = this.durations.get(route);
    if (!histogram) this.durations.set(route, (histogram = { counts: DURATION_BUCKETS_S.map(() => 0), sum: 0, count: 0 }));
    DURATION_BUCKETS_S.forEach((bound, i) => {
      if (durationS <= bound) histogram.counts[i]!++;
    });
    histogram.sum += durationS;
    histogram.count++;
    if (options.code && status >= 400) this.refusals.set(options.code, (this.refusals.get(options.code) ?? 0) + 1);
    if (options.replayed) this.replays++;
  }

  /** The exposition text. */
  text(): string {
    const lines: string[] = [];
    lines.push('# HELP payfleet_http_requests_total HTTP requests answered, by route and status.', '# TYPE payfleet_http_requests_total counter');
    for (const [key, value] of this.requests) {
      const [route, status] = JSON.parse(key) as [string, string];
      lines.push(`payfleet_http_requests_total{route="${escapeLabel(route)}",status="${status}"} ${value}`);
    }
    lines.push('# HELP payfleet_http_request_duration_seconds Time to answer an HTTP request.', '# TYPE payfleet_http_request_duration_seconds histogram');
    for (const [route, h] of this.durations) {
      const label = `route="${escapeLabel(route)}"`;
      DURATION_BUCKETS_S.forEach((bound, i) => lines.push(`payfleet_http_request_duration_seconds_bucket{${label},le="${bound}"} ${h.counts[i]}`));
      lines.push(`payfleet_http_request_duration_seconds_bucket{${label},le="+Inf"} ${h.count}`);
      lines.push(`payfleet_http_request_duration_seconds_sum{${label}} ${h.sum}`);
      lines.push(`payfleet_http_request_duration_seconds_count{${label}} ${h.count}`);
    }
    lines.push('# HELP payfleet_http_refusals_total Requests refused, by reason code.', '# TYPE payfleet_http_refusals_total counter');
    for (const [code, value] of this.refusals) lines.push(`payfleet_http_refusals_total{code="${escapeLabel(code)}"} ${value}`);
    lines.push('# HELP payfleet_http_idempotent_replays_total Stored answers given again for a repeated Idempotency-Key.', '# TYPE payfleet_http_idempotent_replays_total counter');
    lines.push(`payfleet_http_idempotent_replays_total ${this.replays}`);
    lines.push('# HELP payfleet_http_in_flight Requests being answered now.', '# TYPE payfleet_http_in_flight gauge');
    lines.push(`payfleet_http_in_flight ${this.inFlight}`);
    return `${lines.join('\n')}\n`;
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
