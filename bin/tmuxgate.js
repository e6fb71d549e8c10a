#!/usr/bin/env node
// Entry point: runs the compiled CLI (npm run build writes dist/).
// Recordings sync with fdatasync on libuv's thread pool; with hundreds of sessions the default
// four threads queue up, so the pool is widened before anything uses it (hence the late import).
process.env.UV_THREADPOOL_SIZE ??= '16';
const { runCli } = await import('../dist/cli/main.js');

const code = await runCli(process.argv.slice(2));
process.exitCode = code;
