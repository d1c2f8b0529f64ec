#!/usr/bin/env node
import module from 'node:module';

// Node 22.1+: keep V8's compiled code on disk (module compile cache), for this process and, through
// NODE_COMPILE_CACHE, for the workers it forks; their start-up is mostly compiling modules. It never throws
// (a failure leaves it off), and NODE_DISABLE_COMPILE_CACHE=1 turns it off. Node 20 has no such API.
const compileCache = module.enableCompileCache?.();
if (compileCache?.directory && process.env.NODE_COMPILE_CACHE === undefined) process.env.NODE_COMPILE_CACHE = compileCache.directory;

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
