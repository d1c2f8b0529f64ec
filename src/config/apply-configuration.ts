/**
 * Options from the environment and a config file, for every command, in one place: a preAction hook fills
 * each configurable option the command line left unset, through the option's own parser. Precedence:
 * flag > environment > config file > default.
 *
 * Which options are configurable: every option of the deployment commands (`start`, and `config`, which
 * shows start's configuration), and the database options of every command (so `send` finds the database the
 * config file names). The other commands' flags describe one invocation (--wait, --json, --timeout, send's
 * --max-attempts) and are not read from the environment: PREFORK_MAX_ATTEMPTS configures the supervisor's
 * default, it must not stamp every task sent from that shell.
 */
import path from 'node:path';
import { Option, type Command } from 'commander';
import { PreforkError } from '../errors.js';
import { checkConfigKeys, readConfigFile, type ConfigFile } from './config-file.js';
import { envSourcesFor } from './env-names.js';
import { parseOptionValue, showRaw } from './option-value.js';
import { recordConfigFile, recordOrigin } from './origins.js';

export interface ConfigurationRules {
  /** The deployment command: all its options are configurable, and their keys are the config file's keys. */
  deploymentCommand: string;
  /** Commands that take the deployment command's options to show or check them (`config`): those are configurable. */
  mirrorCommands: readonly string[];
  /** Options (attribute names) configurable on every command that has them. */
  sharedOptions: readonly string[];
}

const configOptionKey = 'config';

/** Adds --config to the commands that take configuration and the hook that resolves it. */
export function installConfiguration(program: Command, rules: ConfigurationRules): void {
  const deployment = program.commands.find((c) => c.name() === rules.deploymentCommand);
  const validKeys = deployment ? configurableOptions(deployment, rules, []).map((o) => o.attributeName()) : [];
  for (const command of program.commands) {
    if (configurableOptions(command, rules, validKeys).length === 0) continue;
    command.addOption(new Option('--config <path>', `JSON config file with camelCase option keys (default: ./prefork.config.json if present; env: PREFORK_CONFIG)`));
  }
  program.hook('preAction', (_program, command) => {
    applyConfiguration(command, configurableOptions(command, rules, validKeys), validKeys);
  });
}

/**
 * The options of `command` that read the environment and the config file (the positive one of --x/--no-x).
 * `deploymentKeys` are the deployment command's configurable keys, for the mirror commands.
 */
export function configurableOptions(command: Command, rules: ConfigurationRules, deploymentKeys: readonly string[]): Option[] {
  const name = command.name();
  const isConfigurable = (key: string) =>
    name === rules.deploymentCommand || (rules.mirrorCommands.includes(name) && deploymentKeys.includes(key)) || rules.sharedOptions.includes(key);
  const byKey = new Map<string, Option>();
  for (const option of command.options as Option[]) {
    const key = option.attributeName();
    if (key === configOptionKey || key === 'help' || key === 'version' || !isConfigurable(key)) continue;
    const seen = byKey.get(key);
    if (!seen || (seen.negate && !option.negate)) byKey.set(key, option);
  }
  return [...byKey.values()];
}

export function applyConfiguration(command: Command, options: readonly Option[], validKeys: readonly string[], env: NodeJS.ProcessEnv = process.env): ConfigFile | null {
  if (options.length === 0) return null;
  const file = loadConfigFile(command, env);
  if (file) checkConfigKeys(file, validKeys);
  recordConfigFile(command, file?.path ?? null);
  for (const option of options) {
    const key = option.attributeName();
    const source = command.getOptionValueSource(key);
    if (source === 'cli') {
      recordOrigin(command, key, { source: 'flag' });
      continue;
    }
    const previous = command.getOptionValue(key);
    const fromEnv = envSourcesFor(option).find(({ name }) => env[name] !== undefined && env[name] !== '');
    if (fromEnv) {
      const raw = env[fromEnv.name]!;
      const where = `${fromEnv.name}=${showRaw(key, raw)}`;
      const value = parseOptionValue(option, raw, where, previous, fromEnv.inverted ? option.long : option.negate ? key : undefined);
      command.setOptionValueWithSource(key, fromEnv.inverted ? !value : value, 'env');
      recordOrigin(command, key, { source: 'env', from: fromEnv.name });
      continue;
    }
    let raw = file?.values[key];
    if (file && raw === null) {
      // Not the default in disguise: a key set to null is a slip (leave it out for the default).
      throw new PreforkError('CONFIG_NULL', `${file.display}: ${key} is null: give a value, or leave the key out for the default`, { exitCode: 2 });
    }
    if (file && raw !== undefined) {
      // A relative path in the file is relative to the file, wherever it is run from.
      if (typeof raw === 'string' && /<(path|dir)>/.test(option.flags)) raw = path.resolve(path.dirname(file.path), raw);
      command.setOptionValueWithSource(key, parseOptionValue(option, raw, `${file.display}: ${key}=${showRaw(key, file.values[key])}`, previous, option.negate ? key : undefined), 'config');
      recordOrigin(command, key, { source: 'config file', from: file.display });
      continue;
    }
    recordOrigin(command, key, { source: 'default' });
  }
  return file;
}

function loadConfigFile(command: Command, env: NodeJS.ProcessEnv): ConfigFile | null {
  const flag = command.getOptionValueSource(configOptionKey) === 'cli' ? (command.getOptionValue(configOptionKey) as string) : undefined;
  if (flag !== undefined) return readConfigFile({ path: flag, where: `--config ${flag}`.trim() });
  if (env.PREFORK_CONFIG) return readConfigFile({ path: env.PREFORK_CONFIG, where: `PREFORK_CONFIG=${env.PREFORK_CONFIG}` });
  return readConfigFile(undefined);
}
