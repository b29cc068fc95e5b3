//! The tower-lsp server: keeps the open documents and the last analysis of
//! each, re-checks incrementally after an edit (briefly debounced) and
//! converts between the protocol and [`crate::features`].
//! Logs go to stderr; stdout carries the protocol only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::lsp_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

use crate::features;
use crate::position::LineMap;
use crate::snapshot::{uri_to_path, DocLoader, Snapshot};

static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Whether the lifecycle lines ("initialized", "shutting down") are printed:
/// at `--log info` and above (the default), not at `warn` or `error`.
static LIFECYCLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Sets what is logged on stderr from the `--log` level: `error`, `warn`,
/// `info` (lifecycle lines) or `debug` (also every check with its timing).
pub fn set_log_level(level: &str) {
    set_verbose(level == "debug");
    LIFECYCLE.store(matches!(level, "info" | "debug"), std::sync::atomic::Ordering::Relaxed);
}

fn lifecycle(line: &str) {
    if LIFECYCLE.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("{line}");
    }
}

/// Log every check (with its timing) on stderr.
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, std::sync::atomic::Ordering::Relaxed);
}

fn verbose() -> bool {
    VERBOSE.load(std::sync::atomic::Ordering::Relaxed)
}

/// How long a burst of edits must pause before the document is re-checked.
/// Short: an edit inside a workflow is re-checked incrementally in a few
/// milliseconds; the pause only spares whole checks (an edit outside any
/// workflow) while the user is still typing.
pub const DEBOUNCE: Duration = Duration::from_millis(25);

/// Serves the protocol over stdin/stdout until the client exits; returns
/// whether the session ended cleanly (see [`serve`]).
pub async fn serve_stdio() -> bool {
    serve(tokio::io::stdin(), tokio::io::stdout()).await
}

/// Serves the protocol over any byte streams (tests and the benchmark use
/// in-memory pipes). Returns `true` only when the client asked for
/// `shutdown` before the session ended: `exit` without it, the end of the
/// input, or a malformed frame (the transport stops on one) is an unclean
/// end, and the protocol says the server then exits with status 1.
pub async fn serve<I, O>(input: I, output: O) -> bool
where
    I: AsyncRead + Unpin,
    O: AsyncWrite,
{
    let shut_down = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&shut_down);
    let (service, socket) = LspService::new(move |client| Backend::with_shutdown_flag(client, flag));
    Server::new(input, output, socket).serve(service).await;
    shut_down.load(Ordering::SeqCst)
}

struct Doc {
    text: String,
    version: i32,
}

#[derive(Default)]
struct State {
    docs: HashMap<Uri, Doc>,
    /// The last analysis of each document, with the version it analysed.
    snapshots: HashMap<Uri, (i32, Arc<Snapshot>)>,
    /// Bumped by every edit; a scheduled check runs only if it is still
    /// the latest.
    generation: HashMap<Uri, u64>,
    last_edit: HashMap<Uri, Instant>,
    /// Held while a document is analysed.
    gate: Arc<tokio::sync::Mutex<()>>,
}

/// The language server.
pub struct Backend {
    client: Client,
    state: Arc<Mutex<State>>,
    /// Set when the client sends `shutdown`.
    shut_down: Arc<AtomicBool>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves plain data behind: keep going.
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Backend {
    pub fn new(client: Client) -> Backend {
        Backend::with_shutdown_flag(client, Arc::new(AtomicBool::new(false)))
    }

    /// A backend that sets `flag` when the client sends `shutdown`.
    pub fn with_shutdown_flag(client: Client, flag: Arc<AtomicBool>) -> Backend {
        Backend { client, state: Arc::new(Mutex::new(State::default())), shut_down: flag }
    }

    /// The analysis of the current text of a document (re-checked when the
    /// text changed since the last one).
    async fn snapshot(&self, uri: &Uri) -> Option<Arc<Snapshot>> {
        analyze(&self.state, uri).await
    }

    /// Re-checks a document after the debounce and publishes diagnostics.
    fn schedule(&self, uri: Uri) {
        let delay;
        let generation;
        {
            let mut st = lock(&self.state);
            let now = Instant::now();
            let recent = st.last_edit.get(&uri).is_some_and(|t| now.duration_since(*t) < DEBOUNCE);
            // The first edit after a pause is checked at once; a burst waits
            // until it pauses.
            delay = if recent { DEBOUNCE } else { Duration::ZERO };
            st.last_edit.insert(uri.clone(), now);
            let g = st.generation.entry(uri.clone()).or_insert(0);
            *g += 1;
            generation = *g;
        }
        let state = Arc::clone(&self.state);
        let client = self.client.clone();
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if lock(&state).generation.get(&uri) != Some(&generation) {
                return;
            }
            let started = Instant::now();
            let Some(snap) = analyze(&state, &uri).await else { return };
            if lock(&state).generation.get(&uri) != Some(&generation) {
                return;
            }
            let version = lock(&state).docs.get(&uri).map(|d| d.version);
            let files = features::diagnostics::publish(&snap);
            let count: usize = files.iter().map(|(_, d)| d.len()).sum();
            for (file_uri, diags) in files {
                let v = if file_uri == uri { version } else { None };
                client.publish_diagnostics(file_uri, diags, v).await;
            }
            if verbose() {
                eprintln!("aosc lsp: checked {} in {:?} ({count} diagnostics)", uri.as_str(), started.elapsed());
            }
        });
    }
}

async fn analyze(state: &Arc<Mutex<State>>, uri: &Uri) -> Option<Arc<Snapshot>> {
    // One analysis at a time: each builds on the last one, which it takes.
    let gate = Arc::clone(&lock(state).gate);
    let _turn = gate.lock().await;
    let (version, text, loader, prev) = {
        let mut st = lock(state);
        let doc = st.docs.get(uri)?;
        if let Some((v, snap)) = st.snapshots.get(uri)
            && *v == doc.version {
                return Some(Arc::clone(snap));
            }
        let mut loader = DocLoader::default();
        for (u, d) in &st.docs {
            loader.open.insert(PathBuf::from(uri_to_path(u)), d.text.clone());
        }
        let (version, text) = (doc.version, doc.text.clone());
        // The last analysis, to build on when nobody else holds it (a
        // request still answering from it); otherwise a whole check.
        let prev = st.snapshots.remove(uri).and_then(|(_, snap)| Arc::try_unwrap(snap).ok());
        (version, text, loader, prev)
    };
    let path = uri_to_path(uri);
    let snap = tokio::task::spawn_blocking(move || {
        let mut loader = loader;
        loader.disk = Some(aos_compiler::ProjectLoader::for_program(std::path::Path::new(&path)));
        let started = Instant::now();
        let (snap, how) = match prev {
            Some(prev) => prev.recheck(&text, &loader),
            None => (Snapshot::new(&path, &text, &loader), aos_compiler::Recheck::Whole("first analysis")),
        };
        if verbose() {
            eprintln!("aosc lsp: analysed {path} in {:?} ({how:?})", started.elapsed());
        }
        Arc::new(snap)
    })
    .await
    .ok()?;
    let mut st = lock(state);
    // The analysis of an older version is kept too when there is none: the
    // next one builds on it.
    let open = st.docs.get(uri).map(|d| d.version);
    if open == Some(version) || (open.is_some() && !st.snapshots.contains_key(uri)) {
        st.snapshots.insert(uri.clone(), (version, Arc::clone(&snap)));
    }
    Some(snap)
}

/// Applies one content change (a range edit, or the whole text).
fn apply_change(text: &mut String, change: TextDocumentContentChangeEvent) {
    match change.range {
        Some(range) => {
            let map = LineMap::new(text);
            let span = map.span(text, range);
            if let Some(end) = text.get(span.start as usize..span.end as usize).map(|_| span.end as usize) {
                text.replace_range(span.start as usize..end, &change.text);
            }
        }
        None => *text = change.text,
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, _: InitializeParams) -> Result<InitializeResult> {
        Ok(InitializeResult {
            server_info: Some(ServerInfo { name: "aosc lsp".to_string(), version: Some(env!("CARGO_PKG_VERSION").to_string()) }),
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
                    open_close: Some(true),
                    change: Some(TextDocumentSyncKind::INCREMENTAL),
                    ..TextDocumentSyncOptions::default()
                })),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                definition_provider: Some(OneOf::Left(true)),
                references_provider: Some(OneOf::Left(true)),
                rename_provider: Some(OneOf::Right(RenameOptions {
                    prepare_provider: Some(true),
                    work_done_progress_options: WorkDoneProgressOptions::default(),
                })),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(vec![".".to_string()]),
                    ..CompletionOptions::default()
                }),
                document_symbol_provider: Some(OneOf::Left(true)),
                document_formatting_provider: Some(OneOf::Left(true)),
                code_action_provider: Some(features::generate::capability()),
                code_lens_provider: Some(CodeLensOptions { resolve_provider: Some(false) }),
                semantic_tokens_provider: Some(SemanticTokensServerCapabilities::SemanticTokensOptions(
                    SemanticTokensOptions {
                        legend: features::semantic_tokens::legend(),
                        full: Some(SemanticTokensFullOptions::Bool(true)),
                        range: None,
                        work_done_progress_options: WorkDoneProgressOptions::default(),
                    },
                )),
                ..ServerCapabilities::default()
            },
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        lifecycle("aosc lsp: initialized");
    }

    async fn shutdown(&self) -> Result<()> {
        lifecycle("aosc lsp: shutting down");
        self.shut_down.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let doc = params.text_document;
        lock(&self.state).docs.insert(doc.uri.clone(), Doc { text: doc.text, version: doc.version });
        self.schedule(doc.uri);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri;
        {
            let mut st = lock(&self.state);
            let Some(doc) = st.docs.get_mut(&uri) else { return };
            for change in params.content_changes {
                apply_change(&mut doc.text, change);
            }
            doc.version = params.text_document.version;
        }
        self.schedule(uri);
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        {
            let mut st = lock(&self.state);
            st.docs.remove(&uri);
            st.snapshots.remove(&uri);
            st.generation.remove(&uri);
        }
        self.client.publish_diagnostics(uri, Vec::new(), None).await;
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let p = params.text_document_position_params;
        let Some(snap) = self.snapshot(&p.text_document.uri).await else { return Ok(None) };
        Ok(features::hover::hover(&snap, p.position))
    }

    async fn goto_definition(&self, params: GotoDefinitionParams) -> Result<Option<GotoDefinitionResponse>> {
        let p = params.text_document_position_params;
        let Some(snap) = self.snapshot(&p.text_document.uri).await else { return Ok(None) };
        Ok(features::definition::definition(&snap, p.position).map(GotoDefinitionResponse::Scalar))
    }

    async fn references(&self, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
        let p = params.text_document_position;
        let Some(snap) = self.snapshot(&p.text_document.uri).await else { return Ok(None) };
        Ok(Some(features::references::references(&snap, p.position, params.context.include_declaration)))
    }

    async fn prepare_rename(&self, params: TextDocumentPositionParams) -> Result<Option<PrepareRenameResponse>> {
        let Some(snap) = self.snapshot(&params.text_document.uri).await else { return Ok(None) };
        match features::rename::prepare(&snap, params.position) {
            Ok(range) => Ok(Some(PrepareRenameResponse::Range(range))),
            Err(message) => Err(Error::invalid_params(message)),
        }
    }

    async fn rename(&self, params: RenameParams) -> Result<Option<WorkspaceEdit>> {
        let p = params.text_document_position;
        let Some(snap) = self.snapshot(&p.text_document.uri).await else { return Ok(None) };
        features::rename::rename(&snap, p.position, &params.new_name).map(Some).map_err(Error::invalid_params)
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let p = params.text_document_position;
        let Some(snap) = self.snapshot(&p.text_document.uri).await else { return Ok(None) };
        Ok(Some(CompletionResponse::Array(features::completion::completion(&snap, p.position))))
    }

    async fn document_symbol(&self, params: DocumentSymbolParams) -> Result<Option<DocumentSymbolResponse>> {
        let Some(snap) = self.snapshot(&params.text_document.uri).await else { return Ok(None) };
        Ok(Some(DocumentSymbolResponse::Nested(features::symbols::document_symbols(&snap))))
    }

    async fn formatting(&self, params: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>> {
        let text = lock(&self.state).docs.get(&params.text_document.uri).map(|d| d.text.clone());
        Ok(text.and_then(|t| features::formatting::format(&t)))
    }

    async fn semantic_tokens_full(&self, params: SemanticTokensParams) -> Result<Option<SemanticTokensResult>> {
        let Some(snap) = self.snapshot(&params.text_document.uri).await else { return Ok(None) };
        let data = features::semantic_tokens::tokens(&snap);
        Ok(Some(SemanticTokensResult::Tokens(SemanticTokens { result_id: None, data })))
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        let Some(snap) = self.snapshot(&params.text_document.uri).await else { return Ok(None) };
        Ok(Some(features::code_lens::code_lenses(&snap)))
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let uri = params.text_document.uri;
        let Some(snap) = self.snapshot(&uri).await else { return Ok(None) };
        let mut actions = features::code_actions::code_actions(&snap, &uri, params.range);
        actions.extend(features::generate::offers(&snap, &uri, params.range));
        Ok(Some(actions))
    }

    async fn code_action_resolve(&self, action: CodeAction) -> Result<CodeAction> {
        let Some((uri, _)) = features::generate::target(&action) else { return Ok(action) };
        let uri: Uri = uri.parse().map_err(|_| Error::invalid_params("the action's document is not a URI"))?;
        let Some(snap) = self.snapshot(&uri).await else { return Err(Error::invalid_params("the document is not open")) };
        let resolved = tokio::task::spawn_blocking(move || features::generate::resolve(&snap, &uri, action)).await;
        match resolved {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(e)) => {
                self.client.show_message(MessageType::ERROR, format!("{}: {e}", features::generate::TITLE)).await;
                Err(Error { code: ErrorCode::ServerError(-32803), message: e.to_string().into(), data: None })
            }
            Err(e) => Err(Error { code: ErrorCode::InternalError, message: e.to_string().into(), data: None }),
        }
    }
}
