import { Command } from 'commander';
import { example, handler, withAdmin, withCommon } from './common.js';
import { printJson, printTable } from './output.js';
import { EXIT } from '../errors.js';
import { nodeAlive } from '../cluster/placement.js';
import { formatOffset } from '../recording/asciicast.js';

/** "1.4s" under a minute, else "m:ss" / "h:mm:ss". */
const age = (ms: number) => (ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : formatOffset(ms));

/** The bound a node list judges heartbeats by when the config names no cluster (the default). */
const DEFAULT_DEAD_AFTER = 10_000;

/** `tmuxgate nodes list`: the gateway nodes sharing this store, their heartbeats and live sessions. */
export function nodesCommand(): Command {
  const nodes = new Command('nodes').alias('node').description('gateway nodes sharing this store (cluster)');
  nodes.addCommand(
    withCommon(new Command('list'))
      .description('nodes with their link address, machine, heartbeat age, state (alive, stopped, lost) and live sessions')
      .option('--json', 'JSON output')
      .addHelpText('after', example('tmuxgate nodes list', 'tmuxgate nodes list --json'))
      .action(
        handler(async (o: { json?: boolean }, cmd: Command) =>
          withAdmin(cmd, async (a) => {
            const now = a.clock.now();
            const deadAfter = a.config.cluster?.deadAfter ?? DEFAULT_DEAD_AFTER;
            const rows = (await a.nodes.list()).map((n) => ({
              id: n.id,
              link: n.link_address,
              host: n.host,
              pid: n.pid,
              version: n.version,
              startedAt: new Date(n.started_at).toISOString(),
              heartbeatAt: new Date(n.heartbeat_at).toISOString(),
              heartbeatAgeMs: Math.max(0, now - n.heartbeat_at),
              // Stopped: it said so. Lost: another node declared it so, or its heartbeat is past the bound.
              state: n.stopped_at !== null ? 'stopped' : nodeAlive(n, now, deadAfter) ? 'alive' : 'lost',
              liveSessions: n.live_sessions,
            }));
            if (o.json) printJson(rows);
            else {
              const shown = rows.map((r) => ({ ...r, link: r.link ?? '-', heartbeat: `${age(r.heartbeatAgeMs)} ago`, live: r.liveSessions }));
              printTable(shown, ['id', 'state', 'heartbeat', 'live', 'link', 'host', 'pid', 'version']);
            }
            return EXIT.ok;
          }),
        ),
      ),
  );
  return nodes;
}
