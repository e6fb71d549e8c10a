import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';

/** Work the gateway does every `everyMs` on the injected clock. */
export interface PeriodicTask {
  name: string;
  everyMs: number;
  /** A returned promise is work in flight: the next run waits for it. */
  run(): unknown;
}

/**
 * Runs periodic work on the injected clock, like every other policy timer. Asynchronous work runs
 * one at a time, so a clock moved forward by hours does not start hundreds; ticks that fall due
 * meanwhile fold into one more run, so the state as of the last tick is checked. A failure is
 * logged as "<name> failed" and the task runs again at its next tick. Returns a stop function.
 */
export function startScheduler(deps: { clock: Clock; logger: Logger }, tasks: readonly PeriodicTask[]): () => void {
  const stops = tasks.map((task) => {
    let running = false;
    let again = false;
    const failed = (e: unknown) => deps.logger.error({ err: e }, `${task.name} failed`);
    const tick = (): void => {
      if (running) {
        again = true;
        return;
      }
      let result: unknown;
      try {
        result = task.run();
      } catch (e) {
        failed(e);
        return;
      }
      if (!(result instanceof Promise)) return;
      running = true;
      result.catch(failed).finally(() => {
        running = false;
        if (again) {
          again = false;
          tick();
        }
      });
    };
    return deps.clock.setInterval(tick, task.everyMs);
  });
  return () => {
    for (const stop of stops) stop();
  };
}
