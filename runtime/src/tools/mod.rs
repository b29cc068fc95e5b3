//! Tools: the [`Tool`] trait and dispatch, and the standard library of
//! LANGUAGE.md Appendix A (one module per tool family), configured from the
//! environment as §6a says (`AOS_SQL_URL`, `AOS_SMTP_URL`, `AOS_SMTP_FROM`).

pub mod email;
pub mod exec;
pub mod file;
pub mod guard;
pub mod http;
pub mod memory;
pub mod sandbox;
pub mod sql;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::store::{BoxFuture, Store};

/// What a tool may know about the call.
#[derive(Clone, Debug, Default)]
pub struct ToolCtx {
    /// The run's workspace directory (`file.*` stay inside it).
    pub workspace: PathBuf,
    /// The step's `idempotency_key`, for tools with external effects.
    pub idempotency_key: Option<String>,
    /// The run and step (and fan-out item, as `STEP#ITEM`) making the call.
    pub run_id: String,
    pub step: String,
    /// The run's program and the model fabric, for tools that ask models
    /// (the embeddings of `memory.*`); `None` outside a run.
    pub models: Option<Models>,
    /// What the call adds to its step's record: model usage and decisions.
    pub record: CallRecord,
}

/// The models a tool may ask: the program's (its roles and prices) through
/// the runtime's fabric.
#[derive(Clone)]
pub struct Models {
    pub fabric: Arc<crate::fabric::Fabric>,
    pub program: Arc<aos_compiler::ir::Program>,
}

impl std::fmt::Debug for Models {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Models").field("roles", &self.program.roles).finish_non_exhaustive()
    }
}

/// What a tool call spent on models and decided, for its step's record
/// (the usage is billed to the step; the decisions are audited).
#[derive(Clone, Debug, Default)]
pub struct Spent {
    pub usage: crate::events::Usage,
    pub decisions: Vec<crate::audit::Decision>,
}

/// Where a tool call accumulates its [`Spent`]; shared, so that what a
/// failed call spent is recorded too.
#[derive(Clone, Debug, Default)]
pub struct CallRecord(Arc<std::sync::Mutex<Spent>>);

impl CallRecord {
    pub fn add(&self, usage: &crate::events::Usage, decisions: Vec<crate::audit::Decision>) {
        if let Ok(mut s) = self.0.lock() {
            s.usage.add(usage);
            s.decisions.extend(decisions);
        }
    }

    /// Everything recorded so far (the record is left empty).
    pub fn take(&self) -> Spent {
        self.0.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default()
    }
}

/// Why a tool call failed. Each variant carries the message the journal
/// records; the variant says what kind of failure it was, so that nothing
/// compares messages.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The arguments are missing or malformed (retrying cannot help).
    #[error("{0}")]
    BadInput(String),
    /// A guard refused the call: the workspace confinement, the outbound
    /// HTTP guard, or the sandbox (including a limit it enforced).
    #[error("{0}")]
    Denied(String),
    /// What the tool talks to could not be reached or answered badly at
    /// the transport level (connection, DNS, TLS, a malformed answer).
    #[error("{0}")]
    Transport(String),
    /// A time limit ended the call.
    #[error("{0}")]
    Timeout(String),
    /// The tool ran and reported failure (a non-zero exit, an SQL error,
    /// an HTTP error status, a rejected message).
    #[error("{0}")]
    Failed(String),
    /// The tool is not configured in this runtime (e.g. no `AOS_SQL_URL`).
    #[error("{0}")]
    Unavailable(String),
}

impl ToolError {
    /// The same kind of failure with its message rewritten (a prefix naming
    /// the tool, a password redacted).
    pub fn map(self, f: impl FnOnce(String) -> String) -> ToolError {
        match self {
            ToolError::BadInput(m) => ToolError::BadInput(f(m)),
            ToolError::Denied(m) => ToolError::Denied(f(m)),
            ToolError::Transport(m) => ToolError::Transport(f(m)),
            ToolError::Timeout(m) => ToolError::Timeout(f(m)),
            ToolError::Failed(m) => ToolError::Failed(f(m)),
            ToolError::Unavailable(m) => ToolError::Unavailable(f(m)),
        }
    }

    /// The message, as journaled.
    pub fn message(&self) -> &str {
        match self {
            ToolError::BadInput(m)
            | ToolError::Denied(m)
            | ToolError::Transport(m)
            | ToolError::Timeout(m)
            | ToolError::Failed(m)
            | ToolError::Unavailable(m) => m,
        }
    }
}

/// A tool implementation.
pub trait Tool: Send + Sync {
    fn call<'a>(&'a self, args: Value, ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, ToolError>>;
}

/// Where the external tools connect (§6a); read from the environment by
/// [`ToolConfig::from_env`].
#[derive(Clone, Debug, Default)]
pub struct ToolConfig {
    /// `AOS_SQL_URL`: the database `sql.*` use.
    pub sql_url: Option<String>,
    /// `AOS_SMTP_URL`: the relay `email.send` uses (`smtp://host:port`).
    pub smtp_url: Option<String>,
    /// `AOS_SMTP_FROM`: the sender address.
    pub smtp_from: Option<String>,
    /// `AOS_SMTP_TLS`: `opportunistic` (default), `required` or `none`.
    pub smtp_tls: Option<String>,
    /// `AOS_HTTP_ALLOW`: the internal destinations the HTTP tools may
    /// reach (`127.0.0.1:8080,intranet:443`, or `*`); none by default.
    pub http_allow: Option<String>,
}

impl ToolConfig {
    pub fn from_env() -> ToolConfig {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        ToolConfig {
            sql_url: var("AOS_SQL_URL"),
            smtp_url: var("AOS_SMTP_URL"),
            smtp_from: var("AOS_SMTP_FROM"),
            smtp_tls: var("AOS_SMTP_TLS"),
            http_allow: var("AOS_HTTP_ALLOW"),
        }
    }
}

/// Tools by dotted name.
#[derive(Clone)]
pub struct Tools {
    map: HashMap<String, Arc<dyn Tool>>,
    http: Option<http::HttpClient>,
    /// Where `shell.exec` and `exec:` tools run.
    pub sandbox: Arc<sandbox::Sandbox>,
    /// Only the registered tools answer: `http:` and `exec:` tools are not
    /// reached either (the scripted tools of `aosc test`).
    only_registered: bool,
}

impl Tools {
    /// The built-in tools, configured from the environment.
    pub fn builtin() -> Tools {
        Tools::build(&ToolConfig::from_env(), Arc::new(sandbox::Sandbox::from_env()))
    }

    /// The built-in tools with an explicit configuration (the sandbox from
    /// the environment). `memory.*` need the store: see [`Tools::with_store`].
    pub fn with_config(cfg: &ToolConfig) -> Tools {
        Tools::build(cfg, Arc::new(sandbox::Sandbox::from_env()))
    }

    /// The built-in tools, with `shell.exec` and `exec:` tools running in `sandbox`.
    pub fn with_sandbox(sandbox: Arc<sandbox::Sandbox>) -> Tools {
        Tools::build(&ToolConfig::from_env(), sandbox)
    }

    fn build(cfg: &ToolConfig, sandbox: Arc<sandbox::Sandbox>) -> Tools {
        let mut map: HashMap<String, Arc<dyn Tool>> = HashMap::new();
        map.insert("file.read".into(), Arc::new(file::Read));
        map.insert("file.write".into(), Arc::new(file::Write));
        map.insert("shell.exec".into(), Arc::new(exec::ShellExec { sandbox: sandbox.clone() }));
        let db = Arc::new(sql::SqlDb::new(cfg.sql_url.clone()));
        map.insert("sql.query".into(), Arc::new(sql::Query(db.clone())));
        map.insert("sql.execute".into(), Arc::new(sql::Execute(db)));
        map.insert("email.send".into(), Arc::new(email::Send { url: cfg.smtp_url.clone(), from: cfg.smtp_from.clone(), tls: cfg.smtp_tls.clone() }));
        // Building the client only fails when the TLS backend cannot start;
        // the http tools are then absent and fail the step by name.
        let client = http::client(guard::Guard::parse(cfg.http_allow.as_deref().unwrap_or(""))).ok();
        if let Some(c) = &client {
            map.insert("http.get".into(), Arc::new(http::Get(c.clone())));
            map.insert("http.request".into(), Arc::new(http::Request(c.clone())));
        }
        Tools { map, http: client, sandbox, only_registered: false }
    }

    /// Adds `memory.remember` / `memory.recall` over `store`, with working
    /// and session memory in this process.
    pub fn with_store(self, store: Arc<dyn Store>) -> Tools {
        self.with_memory(store, Arc::new(memory::working::InProcess::default()))
    }

    /// Adds `memory.*` over `store` (long-term) and `working` (working and
    /// session memory, e.g. Redis).
    pub fn with_memory(mut self, store: Arc<dyn Store>, working: Arc<dyn memory::working::Working>) -> Tools {
        let m = memory::Memory::new(store, working);
        self.map.insert("memory.remember".into(), Arc::new(memory::Remember(m.clone())));
        self.map.insert("memory.recall".into(), Arc::new(memory::Recall(m)));
        self
    }

    /// The implementation of a user tool declared with `exec: [...]`.
    pub fn exec_tool(&self, decl: &aos_compiler::ir::Tool, argv: &[String]) -> Arc<dyn Tool> {
        Arc::new(exec::ExecTool {
            name: decl.name.clone(),
            argv: argv.to_vec(),
            returns_string: decl.ret == aos_compiler::ir::Type::String,
            sandbox: self.sandbox.clone(),
        })
    }

    /// Exactly these tools, standing in for every tool of a program
    /// (built-in, `http:` or `exec:`): nothing else is called.
    pub fn stand_ins(map: HashMap<String, Arc<dyn Tool>>) -> Tools {
        Tools { map, http: None, sandbox: Arc::new(sandbox::Sandbox::from_env()), only_registered: true }
    }

    /// Whether only registered tools answer (see [`Tools::stand_ins`]).
    pub fn only_registered(&self) -> bool {
        self.only_registered
    }

    /// Adds or replaces a tool (tests and embedders).
    pub fn register(&mut self, name: &str, tool: Arc<dyn Tool>) {
        self.map.insert(name.to_string(), tool);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.map.get(name)
    }

    /// Calls a user tool declared `http: "METHOD URL"` with `args`.
    pub async fn call_http(&self, tool: &str, method: &str, url: &str, args: Value) -> Result<Value, ToolError> {
        let client = self.http.clone().ok_or_else(|| ToolError::Unavailable(format!("tool `{tool}`: the HTTP client is not available")))?;
        http::UserHttp { client, tool: tool.to_string(), method: method.to_string(), url: url.to_string() }.call(args).await
    }
}
