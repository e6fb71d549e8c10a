import http from 'node:http';

/** Counters and gauges, rendered in the Prometheus text format. No labels beyond fixed ones. */
export class Metrics {
  private readonly counters = new Map<string, number>();
  private readonly gauges = new Map<string, () => number | Promise<number>>();
  private readonly help = new Map<string, [string, 'counter' | 'gauge']>();

  /** Adds `by` to a counter such as `logins_total{result="success"}`. */
  inc(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }

  describe(base: string, type: 'counter' | 'gauge', text: string): void {
    this.help.set(base, [text, type]);
  }

  /** A value read at each scrape (from the store, for some: so it may be async). */
  gauge(name: string, read: () => number | Promise<number>): void {
    this.gauges.set(name, read);
  }

  async render(): Promise<string> {
    const lines: string[] = [];
    const gauges: [string, number][] = [];
    for (const [k, f] of this.gauges) gauges.push([k, await Promise.resolve(f()).catch(() => NaN)]);
    const all = new Map<string, number>([...this.counters, ...gauges]);
    const bases = [...new Set([...all.keys()].map((k) => k.split('{')[0]!))].sort();
    for (const b of bases) {
      const h = this.help.get(b);
      if (h) lines.push(`# HELP tmuxgate_${b} ${h[0]}`, `# TYPE tmuxgate_${b} ${h[1]}`);
      for (const [k, v] of all) if (k.split('{')[0] === b) lines.push(`tmuxgate_${k} ${Number.isFinite(v) ? v : 0}`);
    }
    return lines.join('\n') + '\n';
  }
}

/** Serves GET /metrics on a loopback address only. */
export function serveMetrics(m: Metrics, host: string, port: number): Promise<http.Server> {
  const srv = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    m.render().then(
      (text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen({ host, port }, () => resolve(srv));
  });
}
