import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BURST_GAP_MS, GATHER_MS, PtyFlow } from '../../src/session/pty-flow.js';

class FakePty {
  paused = false;
  log: string[] = [];
  pause(): void {
    this.paused = true;
    this.log.push('pause');
  }
  resume(): void {
    this.paused = false;
    this.log.push('resume');
  }
}

describe('PtyFlow', () => {
  let t = 0;
  const now = () => t;
  beforeEach(async () => {
    vi.useFakeTimers();
    t = 1000;
  });
  afterEach(() => vi.useRealTimers());

  /** A flow that has just seen two reads 1 ms apart: a burst, so it is gathering. */
  const inBurst = () => {
    const pty = new FakePty();
    const f = new PtyFlow(pty, now);
    f.afterRead();
    t += 1;
    f.afterRead();
    return { pty, f };
  };

  it('never holds the first read after a quiet spell (a keystroke echo goes out at once)', async () => {
    const pty = new FakePty();
    const f = new PtyFlow(pty, now);
    f.afterRead();
    t += BURST_GAP_MS + 1;
    f.afterRead();
    t += 100;
    f.afterRead();
    expect(pty.log).toEqual([]);
  });

  it('pauses a burst for GATHER_MS, then reads again', async () => {
    const { pty } = inBurst();
    expect(pty.paused).toBe(true);
    vi.advanceTimersByTime(GATHER_MS - 1);
    expect(pty.paused).toBe(true);
    vi.advanceTimersByTime(1);
    expect(pty.paused).toBe(false);
    expect(pty.log).toEqual(['pause', 'resume']);
  });

  it('backpressure and gathering compose: reading resumes only when both let go', async () => {
    const pty = new FakePty();
    const f = new PtyFlow(pty, now);
    f.afterRead();
    t += 1;
    expect(f.clientBlocked()).toBe(true);
    expect(f.clientBlocked()).toBe(false); // one drain wait, not one per read
    f.afterRead();
    vi.advanceTimersByTime(GATHER_MS);
    expect(pty.paused).toBe(true); // the client is still full
    f.drained();
    expect(pty.paused).toBe(false);
    expect(pty.log).toEqual(['pause', 'resume']);
  });

  it('a client that drains while the burst gathers does not resume early', async () => {
    const { pty, f } = inBurst();
    f.clientBlocked();
    f.drained();
    expect(pty.paused).toBe(true);
    vi.advanceTimersByTime(GATHER_MS);
    expect(pty.paused).toBe(false);
  });

  it('after stop, no timer fires and the pty is left alone', async () => {
    const { pty, f } = inBurst();
    f.stop();
    vi.advanceTimersByTime(100);
    expect(pty.log).toEqual(['pause']);
    expect(vi.getTimerCount()).toBe(0);
  });
});
