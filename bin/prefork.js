#!/usr/bin/env node
let cli;
try {
  cli = await import('../dist/cli/main.js');
} catch (error) {
  if (error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/cli/main.js')) {
    process.stderr.write('prefork: error: prefork is not built; run `npm run build` first\n');
    process.exit(1);
  }
  throw error;
}
const code = await cli.main(process.argv);
// `start` returns once its supervisor stopped; other commands once their work is done. Exit now, so an
// open handle in a library cannot keep the command alive.
process.exit(code);
