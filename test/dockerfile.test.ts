/**
 * The Dockerfile, checked without a Docker engine: what it copies exists and is not excluded by .dockerignore,
 * the stages, user, entrypoint and health check are as documented, and the production-only install it makes
 * (package.json, package-lock.json, dist/, bin/, `npm ci --omit=dev --ignore-scripts`) runs a supervisor
 * that runs a task, and whose health check answers.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { useTestSchema } from './support/database.js';
import { freePort } from './support/metrics.js';
import { SupervisorProcess, useProcessLeakGuard } from './support/processes.js';

const schemaName = useTestSchema();
useProcessLeakGuard();

const root = fileURLToPath(new URL('..', import.meta.url));

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  image: string;
  name: string | undefined;
  instructions: Instruction[];
}

/** Instructions (continuation lines joined, comments dropped), grouped by stage. */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && current === '')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push((current + line).trim());
    current = '';
  }
  const stages: Stage[] = [];
  for (const line of logical.filter(Boolean)) {
    const [, keyword, args] = /^(\S+)\s*(.*)$/.exec(line)!;
    const instruction = { keyword: keyword!.toUpperCase(), args: args! };
    if (instruction.keyword === 'FROM') {
      const [image, as, name] = instruction.args.split(/\s+/);
      stages.push({ image: image!, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else {
      expect(stages.length, `${line} before any FROM`).toBeGreaterThan(0);
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return stages;
}

const all = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);
const last = (stage: Stage, keyword: string) => all(stage, keyword).at(-1)?.args;

function copies(stage: Stage): { from: string | undefined; sources: string[]; dest: string }[] {
  return all(stage, 'COPY').map((i) => {
    const words = i.args.split(/\s+/);
    const flags = words.filter((w) => w.startsWith('--'));
    const paths = words.filter((w) => !w.startsWith('--'));
    return { from: flags.find((f) => f.startsWith('--from='))?.slice('--from='.length), sources: paths.slice(0, -1), dest: paths.at(-1)! };
  });
}

/** .dockerignore patterns are anchored at the context root; `*` stays within a path segment, `**` crosses them. */
function ignoredBy(patterns: string[], file: string): string | undefined {
  const parts = file.split('/');
  for (const pattern of patterns) {
    const re = new RegExp(
      `^${pattern
        .replace(/\/$/, '')
        .split('**')
        .map((p) => p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'))
        .join('.*')}$`,
    );
    for (let i = 1; i <= parts.length; i++) if (re.test(parts.slice(0, i).join('/'))) return pattern;
  }
  return undefined;
}

function filesUnder(relative: string): string[] {
  const full = path.join(root, relative);
  if (!statSync(full).isDirectory()) return [relative];
  return readdirSync(full).flatMap((entry) => filesUnder(path.posix.join(relative, entry)));
}

/** The health check's command, as the image runs it (with this node). */
function healthcheckCommand(stage: Stage): string[] {
  const args = last(stage, 'HEALTHCHECK')!;
  const json = args.slice(args.indexOf('CMD') + 'CMD'.length).trim();
  const command = JSON.parse(json) as string[];
  expect(command[0]).toBe('node');
  return [process.execPath, ...command.slice(1)];
}

function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

const dockerfile = parseDockerfile(readFileSync(path.join(root, 'Dockerfile'), 'utf8'));
const dockerignore = readFileSync(path.join(root, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const [build, final] = [dockerfile[0]!, dockerfile.at(-1)!];

describe('Dockerfile', () => {
  it('builds in one stage and runs from node LTS bookworm-slim (glibc, for the embedded PostgreSQL binaries), not alpine', () => {
    expect(dockerfile).toHaveLength(2);
    for (const stage of dockerfile) expect(stage.image).toBe('node:24-bookworm-slim');
    expect(build.name).toBe('build');
    const runs = all(build, 'RUN').map((i) => i.args);
    expect(runs).toEqual(['npm ci --ignore-scripts --no-audit --no-fund', 'npm run build']);
    // The lock file is there before npm ci; the sources before the build.
    const order = build.instructions.map((i) => `${i.keyword} ${i.args}`);
    expect(order.indexOf('COPY package.json package-lock.json ./')).toBeLessThan(order.indexOf('RUN npm ci --ignore-scripts --no-audit --no-fund'));
    expect(order.indexOf('COPY src ./src')).toBeLessThan(order.indexOf('RUN npm run build'));
    expect(last(build, 'WORKDIR')).toBe('/app');
    expect(JSON.parse(readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8')).compilerOptions.outDir).toBe('dist');
  });

  it('copies only what exists in the repository and is not excluded by .dockerignore', () => {
    expect(dockerignore.filter((p) => p.startsWith('!'))).toEqual([]);
    for (const stage of dockerfile) {
      for (const copy of copies(stage)) {
        if (copy.from !== undefined) {
          const source = dockerfile.find((s) => s.name === copy.from);
          expect(source, `COPY --from=${copy.from}`).toBeDefined();
          expect(dockerfile.indexOf(source!)).toBeLessThan(dockerfile.indexOf(stage));
          expect(copy.sources).toEqual(['/app/dist']); // what `npm run build` writes in /app
          continue;
        }
        for (const source of copy.sources) {
          expect(existsSync(path.join(root, source)), `COPY ${source}`).toBe(true);
          for (const file of filesUnder(source)) expect(ignoredBy(dockerignore, file), `${file} is copied but .dockerignore excludes it`).toBeUndefined();
        }
      }
    }
    // And the context leaves out the heavy and the irrelevant.
    for (const skipped of ['node_modules', 'dist', '.git', 'test', '.prefork/pgdata']) expect(ignoredBy(dockerignore, skipped), skipped).toBeDefined();
  });

  it('runs as the node user from a production-only install, tini as PID 1, start by default', () => {
    const user = last(final, 'USER');
    expect(user).toBe('node');
    expect(['root', '0']).not.toContain(user);
    expect(final.instructions.findIndex((i) => i.keyword === 'USER')).toBeGreaterThan(final.instructions.findIndex((i) => i.keyword === 'RUN' && i.args.startsWith('npm ci')));
    expect(all(final, 'RUN').map((i) => i.args)).toContain('npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force');
    expect(all(final, 'RUN').some((i) => /apt-get install .*\btini\b/.test(i.args))).toBe(true);
    expect(copies(final).map((c) => `${c.from ?? ''} ${c.sources.join(' ')} -> ${c.dest}`)).toEqual([
      ' package.json package-lock.json -> ./',
      'build /app/dist -> ./dist',
      ' bin -> ./bin',
    ]);
    expect(JSON.parse(last(final, 'ENTRYPOINT')!)).toEqual(['/usr/bin/tini', '--', 'node', '/app/bin/prefork.js']);
    expect(JSON.parse(last(final, 'CMD')!)).toEqual(['start']);
    expect(last(final, 'STOPSIGNAL')).toBe('SIGTERM');
    expect(last(final, 'HEALTHCHECK')).toMatch(/^--interval=\S+ --timeout=\S+ --start-period=\S+ --retries=\d+ CMD \[/);
    expect(last(final, 'ENV')).toBe('PREFORK_METRICS_PORT=9100 PREFORK_METRICS_HOST=0.0.0.0');
    expect(last(final, 'EXPOSE')).toBe('9100');
    // bin/prefork.js imports ../dist/cli/main.js: both under /app.
    expect(readFileSync(path.join(root, 'bin/prefork.js'), 'utf8')).toContain("import('../dist/cli/main.js')");
  });

  it(
    'runs from a production-only install made as the image makes it: --help, a supervisor, a task, the health check',
    async () => {
      expect(existsSync(path.join(root, 'dist/cli/main.js')), 'run npm run build first').toBe(true);
      const app = await mkdtemp(path.join(os.tmpdir(), 'prefork-image-'));
      const cwd = path.join(app, 'data');
      try {
        for (const entry of ['package.json', 'package-lock.json', 'dist', 'bin']) await cp(path.join(root, entry), path.join(app, entry), { recursive: true });
        await mkdir(cwd);
        // The image's own command, with the npm on PATH (node:24 bundles npm 11; CI also runs this file on Node 22).
        const install = await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: app });
        expect(install.code, install.stderr).toBe(0);
        const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
        for (const dep of Object.keys(pkg.dependencies)) expect(existsSync(path.join(app, 'node_modules', dep)), dep).toBe(true);
        for (const dep of Object.keys(pkg.devDependencies)) expect(existsSync(path.join(app, 'node_modules', dep)), dep).toBe(false);

        const bin = path.join(app, 'bin/prefork.js');
        const help = await run(process.execPath, [bin, '--help'], { cwd });
        expect(help.code, help.stderr).toBe(0);
        expect(help.stdout).toContain('Usage: prefork');

        const schema = schemaName();
        const port = await freePort();
        const env = { PREFORK_SCHEMA: schema, PREFORK_METRICS_PORT: String(port), PREFORK_METRICS_HOST: '127.0.0.1' };
        const sup = new SupervisorProcess(spawn(process.execPath, [bin, 'start', '--workers', '1'], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
        await sup.ready();
        const sent = await run(process.execPath, [bin, 'send', 'prefork.echo', '{"a":1}', '--wait'], { cwd, env: { PREFORK_SCHEMA: schema } });
        expect(sent.code, sent.stderr).toBe(0);
        expect(sent.stdout).toBe('{"a":1}\n');

        const [node, ...check] = healthcheckCommand(final);
        await expect.poll(async () => (await run(node!, check, { cwd, env: { PREFORK_METRICS_PORT: String(port) } })).code).toBe(0);
        expect((await run(node!, check, { cwd, env: { PREFORK_METRICS_PORT: '' } })).code).toBe(0); // metrics off: no opinion
        expect(await sup.stop()).toEqual({ code: 0, signal: null });
        expect((await run(node!, check, { cwd, env: { PREFORK_METRICS_PORT: String(port) } })).code).toBe(1);
      } finally {
        await rm(app, { recursive: true, force: true });
      }
    },
    240_000,
  );
});
