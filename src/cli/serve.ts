import { Command } from 'commander';
import { configOf, example, handler, withCommon } from './common.js';
import { startGateway } from '../gateway.js';

/**
 * `tmuxgate serve`: the gateway, until SIGTERM/SIGINT, then a draining shutdown. The only command
 * that never returns a status: it ends the process itself once drained (0, or 1 when the drain
 * failed), so no handle a library left open can keep a stopped gateway alive.
 */
export function serveCommand(): Command {
  return withCommon(new Command('serve'))
    .description('run the SSH gateway (embedded default: 127.0.0.1:2222, ./data, ./keys)')
    .addHelpText('after', example('tmuxgate serve', 'tmuxgate serve --config /etc/tmuxgate/config.yaml'))
    .action(
      handler(async (_o: unknown, cmd: Command) => {
        process.umask(0o077);
        const config = configOf(cmd);
        const gw = await startGateway(config);
        const stop = (sig: string) => {
          void gw.close(sig).then(
            () => process.exit(0),
            () => process.exit(1),
          );
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
        process.stderr.write(`tmuxgate listening on ${gw.host}:${gw.port} (host key ${gw.hostKeyFingerprint})\n`);
        if (gw.metricsPort !== null) process.stderr.write(`tmuxgate metrics on http://${config.metrics.host}:${gw.metricsPort}/metrics\n`);
        return new Promise<never>(() => {});
      }),
    );
}
