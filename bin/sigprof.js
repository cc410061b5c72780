#!/usr/bin/env node
'use strict';
let cli;
try {
  cli = require('../dist/cli/main.js');
} catch (e) {
  // A git checkout has no dist/ until it is built; say so instead of a module stack trace.
  if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes('dist/cli/main.js')) {
    process.stderr.write('sigprof: dist/cli/main.js is missing; run "npm run build:js" first\n');
    process.exit(1);
  }
  throw e;
}
cli.main(process.argv.slice(2));
