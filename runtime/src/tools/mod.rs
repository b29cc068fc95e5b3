//! Tools: the [`Tool`] trait and dispatch. The standard library's `file.*`
//! are implemented here, confined to the run's workspace; the other tools
//! come in a later issue and fail the step clearly until then.

pub mod exec;
pub mod file;
pub mod sandbox;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::store::BoxFuture;

/// What a tool may know about the call.
#[derive(Clone, Debug)]
pub struct ToolCtx {
    /// The run's workspace directory (`file.*` stay inside it).
    pub workspace: PathBuf,
    /// The step's `idempotency_key`, for tools with external effects.
    pub idempotency_key: Option<String>,
}

/// A tool implementation.
pub trait Tool: Send + Sync {
    fn call<'a>(&'a self, args: Value, ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, String>>;
}

/// Tools by dotted name.
#[derive(Clone)]
pub struct Tools {
    map: HashMap<String, Arc<dyn Tool>>,
    /// Where `shell.exec` and `exec:` tools run.
    pub sandbox: Arc<sandbox::Sandbox>,
}

impl Tools {
    /// The built-in tools this build implements.
    pub fn builtin() -> Tools {
        Tools::with_sandbox(Arc::new(sandbox::Sandbox::from_env()))
    }

    /// The built-in tools, with `shell.exec` and `exec:` tools running in `sandbox`.
    pub fn with_sandbox(sandbox: Arc<sandbox::Sandbox>) -> Tools {
        let mut map: HashMap<String, Arc<dyn Tool>> = HashMap::new();
        map.insert("file.read".into(), Arc::new(file::Read));
        map.insert("file.write".into(), Arc::new(file::Write));
        map.insert("shell.exec".into(), Arc::new(exec::ShellExec { sandbox: sandbox.clone() }));
        Tools { map, sandbox }
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

    /// Adds or replaces a tool (tests and embedders).
    pub fn register(&mut self, name: &str, tool: Arc<dyn Tool>) {
        self.map.insert(name.to_string(), tool);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.map.get(name)
    }
}
