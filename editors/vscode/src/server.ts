// How the client finds and launches `aosc lsp`. Kept free of the `vscode`
// module so that it can be unit-tested with plain Node.

import * as fs from 'fs';
import * as path from 'path';

/** What the resolver needs to know about the machine it runs on. */
export interface ResolveContext {
  /** The environment, for `PATH` and (on Windows) `PATHEXT`. */
  env: NodeJS.ProcessEnv;
  /** `process.platform`. */
  platform: NodeJS.Platform;
  /** The user's home directory, for `~/…` paths. */
  home: string;
  /** The first workspace folder, against which relative paths resolve. */
  workspaceFolder?: string;
  /** Fallback base for relative paths when no folder is open. */
  cwd: string;
  /** Whether `file` is an executable file; injectable for tests. */
  isExecutable?: (file: string) => boolean;
}

/** The command line that starts the language server. */
export interface ServerCommand {
  command: string;
  args: string[];
}

/** Either the command to run or why none could be found. */
export type Resolution =
  | { ok: true; server: ServerCommand }
  | { ok: false; configured: string; message: string };

/** The default value of `aos.server.path`. */
export const DEFAULT_SERVER_PATH = 'aosc';

/** Settings arrive as `unknown` from the user's JSON; keep only strings. */
export function normalizeArgs(value: unknown): string[] {
  if (!Array.isArray(value)) {
    return [];
  }
  return value.filter((v): v is string => typeof v === 'string');
}

function defaultIsExecutable(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) {
      return false;
    }
    if (process.platform !== 'win32') {
      fs.accessSync(file, fs.constants.X_OK);
    }
    return true;
  } catch {
    return false;
  }
}

/** Expands `~` and `${workspaceFolder}` the way users expect from VS Code settings. */
export function expandPath(configured: string, ctx: ResolveContext): string {
  let p = configured.trim();
  if (p === '~' || p.startsWith('~/') || p.startsWith('~\\')) {
    p = pathFor(ctx).join(ctx.home, p.slice(1));
  }
  return p.replace(/\$\{workspaceFolder\}/g, ctx.workspaceFolder ?? ctx.cwd);
}

// The platform's own path rules, so that tests can exercise Windows on Linux.
function pathFor(ctx: ResolveContext): path.PlatformPath {
  return ctx.platform === 'win32' ? path.win32 : path.posix;
}

function withExtensions(file: string, ctx: ResolveContext): string[] {
  if (ctx.platform !== 'win32') {
    return [file];
  }
  const exts = (ctx.env.PATHEXT ?? '.EXE;.CMD;.BAT;.COM').split(';').filter((e) => e.length > 0);
  return [file, ...exts.map((e) => file + e.toLowerCase()), ...exts.map((e) => file + e)];
}

/**
 * Finds the executable for `aos.server.path`: a path with a directory part
 * is used as given (relative to the workspace folder), a bare name is looked
 * up on `PATH` like a shell would. We check up front rather than letting the
 * spawn fail, so the user gets a message that names the setting to change.
 */
export function findExecutable(configured: string, ctx: ResolveContext): string | undefined {
  const isExecutable = ctx.isExecutable ?? defaultIsExecutable;
  const p = expandPath(configured, ctx);
  if (p.length === 0) {
    return undefined;
  }
  const hasDir = p.includes('/') || (ctx.platform === 'win32' && p.includes('\\'));
  if (hasDir) {
    const paths = pathFor(ctx);
    const abs = paths.isAbsolute(p) ? p : paths.resolve(ctx.workspaceFolder ?? ctx.cwd, p);
    return withExtensions(abs, ctx).find(isExecutable);
  }
  const pathVar = ctx.env.PATH ?? ctx.env.Path ?? '';
  const sep = ctx.platform === 'win32' ? ';' : ':';
  for (const dir of pathVar.split(sep)) {
    if (dir.length === 0) {
      continue;
    }
    const found = withExtensions(pathFor(ctx).join(dir, p), ctx).find(isExecutable);
    if (found !== undefined) {
      return found;
    }
  }
  return undefined;
}

/** Turns the two settings into the command line `aosc lsp EXTRA…`. */
export function resolveServer(configuredPath: unknown, extraArgs: unknown, ctx: ResolveContext): Resolution {
  const configured =
    typeof configuredPath === 'string' && configuredPath.trim().length > 0 ? configuredPath : DEFAULT_SERVER_PATH;
  const command = findExecutable(configured, ctx);
  if (command === undefined) {
    const where =
      configured === DEFAULT_SERVER_PATH
        ? '`aosc` is not on PATH'
        : `\`aos.server.path\` is "${configured}", which is not an executable file`;
    return {
      ok: false,
      configured,
      message:
        `AUTOOS: cannot start the language server: ${where}. ` +
        'Install it with `cargo install --path cli` from the AUTOOS repository, ' +
        'or set `aos.server.path` to the `aosc` binary. Syntax highlighting works without it.',
    };
  }
  return { ok: true, server: { command, args: ['lsp', ...normalizeArgs(extraArgs)] } };
}

/** Quotes one word for the shell of `platform` (POSIX sh, or PowerShell on Windows). */
export function shellQuote(word: string, platform: NodeJS.Platform): string {
  if (platform === 'win32') {
    return `'${word.replace(/'/g, "''")}'`;
  }
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command line of the language server's "Run test" code lens
 * (`aos.runTest FILE NAME`): `aosc test FILE --filter NAME`, with the
 * resolved `aosc` and every word quoted.
 */
export function testCommandLine(server: ServerCommand, file: string, name: string, platform: NodeJS.Platform): string {
  const words = [server.command, 'test', file, '--filter', name].map((w) => shellQuote(w, platform));
  // PowerShell runs a quoted program only through the call operator.
  return platform === 'win32' ? `& ${words.join(' ')}` : words.join(' ');
}
