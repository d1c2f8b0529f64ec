/** The `prefork` command line. Every failure is one line on stderr and a documented exit code. */
import '../db/load-pg.js'; // first, before anything imports pg
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { Command, CommanderError } from 'commander';
import { PreforkError } from '../errors.js';
import { classifyDatabaseError, isDataError } from '../db/error-classification.js';
import { exitCodes } from './exit-codes.js';
import { sendCommand } from './commands/send.js';
import { startCommand } from './commands/start.js';
import { statusCommand } from './commands/status.js';
import { stopCommand } from './commands/stop.js';
import { reloadCommand } from './commands/reload.js';
import { scaleCommand } from './commands/scale.js';
import { inspectCommand } from './commands/inspect.js';
import { configCommand } from './commands/config.js';
import { cancelCommand, retryCommand, tasksCommand } from './commands/tasks.js';
import { pauseCommand, resumeCommand } from './commands/pause.js';
import { installConfiguration } from '../config/apply-configuration.js';

// A URL without a user name means the operating system's user, as in libpq (psql). pg falls back to $USER only,
// which containers and services often leave unset; then the user of this process is the one meant.
if (!process.env.PGUSER && !process.env.USER) {
  try {
    process.env.PGUSER = userInfo().username;
  } catch {
    // no passwd entry for this uid: pg's own default stands
  }
}

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('prefork')
    .description('A worker supervisor: a primary forks worker processes, tasks are queued in PostgreSQL, each task runs on its own database connection.')
    .version(version, '-V, --version')
    .addHelpText(
      'after',
      `
Exit codes: 0 ok, 1 task failed, 2 usage or invalid input, 3 database or supervisor unreachable, 124 timed out, 130 interrupted.

Quick start (no database to set up: without DATABASE_URL, start runs an embedded PostgreSQL in ./.prefork):
  $ prefork start --workers 4                 # terminal 1 (built-in tasks; yours with --tasks ./tasks.js)
  $ prefork send prefork.echo '{"hi":1}' --wait   # terminal 2`,
    );
  for (const command of [startCommand(), sendCommand(), statusCommand(), stopCommand(), reloadCommand(), scaleCommand()]) {
    program.addCommand(command);
  }
  program.addCommand(inspectCommand());
  for (const command of [tasksCommand(), cancelCommand(), retryCommand(), pauseCommand(), resumeCommand()]) program.addCommand(command);
  program.addCommand(configCommand());
  // Options from PREFORK_* variables and prefork.config.json: all of start's, and the database options of every command.
  installConfiguration(program, { deploymentCommand: 'start', mirrorCommands: ['config'], sharedOptions: ['databaseUrl', 'schema', 'dataDir'] });
  // Commander's own errors (unknown option, bad value) become exit 2; --help and --version exit 0.
  const configure = (c: Command) => {
    c.exitOverride();
    // Each whole-number flag or argument says its range in --help (the parser knows it: parse.ts's integer).
    for (const o of [...c.options, ...c.registeredArguments] as { parseArg?: { range?: string }; description: string }[]) {
      const range = o.parseArg?.range;
      if (range && !o.description.includes(range)) o.description = `${o.description} (${range})`;
    }
    // One line, as every error: commander's "(Did you mean send?)" joins the message.
    c.configureOutput({ writeErr: (s) => process.stderr.write(s), outputError: (s, write) => write(s.startsWith('error:') ? `prefork: ${s.trim().replace(/\s*\n\s*/g, ' ')}\n` : s) });
    c.commands.forEach(configure);
  };
  configure(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  // `prefork help nope`: commander shows the whole help, with no word of what was wrong.
  const [first, asked] = argv.slice(2);
  if (first === 'help' && asked !== undefined && !program.commands.some((c) => c.name() === asked || c.aliases().includes(asked))) {
    process.stderr.write(`prefork: error: unknown command '${asked}' (prefork --help lists them)\n`);
    return exitCodes.usage;
  }
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : exitCodes.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // `prefork --help`, `prefork help send`: asked for. `prefork` alone (help shown because no command was
      // given) is a usage error, as commander's own exit code says.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return exitCodes.ok;
      if (error.code === 'commander.help') return error.exitCode === 0 ? exitCodes.ok : exitCodes.usage;
      if (error.code === 'commander.invalidArgument' && !error.message.startsWith('error:')) {
        // An InvalidArgumentError thrown from an action (not while parsing) has not been printed yet.
        process.stderr.write(`prefork: error: ${error.message}\n`);
      }
      return exitCodes.usage;
    }
    if (error instanceof PreforkError) {
      process.stderr.write(`prefork: error: ${error.message}\n`);
      return error.exitCode;
    }
    // A value the database cannot store (a payload past jsonb's limits, say): bad input, refused as such.
    if (isDataError(error)) {
      process.stderr.write(`prefork: error: the database cannot store it: ${hideUrlPasswords(oneLine((error as Error)?.message ?? String(error)))}\n`);
      return exitCodes.usage;
    }
    // The database went away under a command (a server restart, the embedded one's supervisor killed, a
    // terminated session): one line and exit 3, wherever in the command it happened.
    const database = classifyDatabaseError(error);
    if (database.category === 'connection' || database.category === 'unavailable') {
      process.stderr.write(`prefork: error: lost the database (${database.reason}): ${hideUrlPasswords(oneLine((error as Error)?.message ?? String(error)))}\n`);
      return exitCodes.unavailable;
    }
    process.stderr.write(`prefork: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
    return exitCodes.taskFailed;
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** A connection URL quoted in a driver's message keeps its user and host, never its password. */
function hideUrlPasswords(text: string): string {
  return text.replace(/(postgres(?:ql)?:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@');
}
