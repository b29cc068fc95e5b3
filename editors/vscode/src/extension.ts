// The VS Code client for `aosc lsp`. All language intelligence lives in the
// server; this file only finds the binary, starts it over stdio and restarts
// it when its settings change.

import * as os from 'os';
import * as vscode from 'vscode';
import { LanguageClient, LanguageClientOptions, ServerOptions } from 'vscode-languageclient/node';
import { resolveServer, testCommandLine } from './server';

let client: LanguageClient | undefined;
let watcher: vscode.FileSystemWatcher | undefined;
let output: vscode.OutputChannel | undefined;
// Start, stop and restart are serialised so that a burst of configuration
// changes cannot leave two servers running.
let pending: Promise<void> = Promise.resolve();

function enqueue(task: () => Promise<void>): Promise<void> {
  pending = pending.then(task, task);
  return pending;
}

/** Called by VS Code the first time an `.aos` document is opened. */
export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel('AUTOOS Language Server');
  context.subscriptions.push(output);
  context.subscriptions.push(
    vscode.commands.registerCommand('aos.restartServer', () => enqueue(restart)),
    // The server's "Run test" code lens: `aosc test FILE --filter NAME` in a terminal.
    vscode.commands.registerCommand('aos.runTest', (file?: unknown, name?: unknown) => runTest(file, name)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('aos.server')) {
        void enqueue(restart);
      }
    }),
  );
  await enqueue(start);
}

let testTerminal: vscode.Terminal | undefined;

function runTest(file: unknown, name: unknown): void {
  if (typeof file !== 'string' || typeof name !== 'string') {
    void vscode.window.showInformationMessage('Run a test from the "▶ Run test" lens above a `test "…"` block.');
    return;
  }
  const config = vscode.workspace.getConfiguration('aos.server');
  const resolution = resolveServer(config.get<unknown>('path'), [], {
    env: process.env,
    platform: process.platform,
    home: os.homedir(),
    workspaceFolder: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
    cwd: process.cwd(),
  });
  if (!resolution.ok) {
    void showError(resolution.message);
    return;
  }
  if (!testTerminal || testTerminal.exitStatus !== undefined) {
    testTerminal = vscode.window.createTerminal('AUTOOS tests');
  }
  testTerminal.show(true);
  testTerminal.sendText(testCommandLine(resolution.server, file, name, process.platform));
}

/** Called by VS Code on shutdown; the server gets a clean `shutdown`/`exit`. */
export function deactivate(): Promise<void> {
  return enqueue(stop);
}

async function restart(): Promise<void> {
  await stop();
  await start();
}

async function start(): Promise<void> {
  const config = vscode.workspace.getConfiguration('aos.server');
  const resolution = resolveServer(config.get<unknown>('path'), config.get<unknown>('extraArgs'), {
    env: process.env,
    platform: process.platform,
    home: os.homedir(),
    workspaceFolder: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
    cwd: process.cwd(),
  });
  if (!resolution.ok) {
    output?.appendLine(resolution.message);
    void showError(resolution.message);
    return;
  }
  const { command, args } = resolution.server;
  output?.appendLine(`Starting ${command} ${args.join(' ')}`);

  // No `transport` on purpose: the client then speaks LSP over the child's
  // stdin/stdout without appending a `--stdio` flag that aosc does not take.
  const serverOptions: ServerOptions = { command, args, options: { env: process.env } };
  watcher = vscode.workspace.createFileSystemWatcher('**/*.aos');
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'aos' },
      { scheme: 'untitled', language: 'aos' },
    ],
    // `use "./x.aos"` makes diagnostics depend on files that are not open.
    synchronize: { fileEvents: watcher },
    outputChannel: output,
  };
  let next: LanguageClient | undefined;
  try {
    next = new LanguageClient('aos', 'AUTOOS Language Server', serverOptions, clientOptions);
    await next.start();
    client = next;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    const message = `AUTOOS: the language server \`${command} ${args.join(' ')}\` failed to start: ${reason}`;
    output?.appendLine(message);
    void showError(message);
    try {
      await next?.dispose();
    } catch {
      // The client never fully started; nothing else to release.
    }
    disposeWatcher();
  }
}

async function stop(): Promise<void> {
  const current = client;
  client = undefined;
  if (current !== undefined) {
    try {
      await current.stop();
    } catch (err) {
      output?.appendLine(`Stopping the language server failed: ${String(err)}`);
    }
  }
  disposeWatcher();
}

function disposeWatcher(): void {
  watcher?.dispose();
  watcher = undefined;
}

async function showError(message: string): Promise<void> {
  const openSettings = 'Open Settings';
  const showLog = 'Show Log';
  const choice = await vscode.window.showErrorMessage(message, openSettings, showLog);
  if (choice === openSettings) {
    await vscode.commands.executeCommand('workbench.action.openSettings', 'aos.server');
  } else if (choice === showLog) {
    output?.show(true);
  }
}
