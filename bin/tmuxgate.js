#!/usr/bin/env node
// Entry point: runs the compiled CLI (npm run build writes dist/).
import { runCli } from '../dist/cli/main.js';

const code = await runCli(process.argv.slice(2));
process.exitCode = code;
