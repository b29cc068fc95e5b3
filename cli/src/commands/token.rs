//! `aosc token`: API tokens for `aosc serve`.

use aos_runtime::ids::{now_ms, rfc3339};
use aos_runtime::store::TokenRow;

use super::exit;
use super::runtime as rtx;
use crate::serve::{hash_token, new_token, parse_token_trust};

/// Create, list and revoke API tokens of `aosc serve` (kept hashed in the store).
#[derive(clap::Args)]
#[command(after_help = "Examples:
  aosc token create --name ci --trust trusted
  aosc token create --name ana --trust basic --groups ops,reviewers
  aosc token list
  aosc token revoke ci")]
pub struct TokenArgs {
    #[command(subcommand)]
    pub action: TokenAction,
}

#[derive(clap::Subcommand)]
pub enum TokenAction {
    /// Make a token; it is printed once, as the last line on stdout.
    Create {
        /// A unique name; the audit log names decisions made with the token by it.
        #[arg(long)]
        name: String,
        /// The trust of the runs the token starts.
        #[arg(long, value_parser = ["basic", "trusted", "admin"])]
        trust: String,
        /// Approver groups (`approval: "ops"` gates), comma-separated.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
    },
    /// The tokens: name, trust, groups, created, revoked.
    List {
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: requests with it are refused from now on.
    Revoke { name: String },
}

pub fn run(args: &TokenArgs) -> u8 {
    rtx::with_runtime(|rt| async move {
        match &args.action {
            TokenAction::Create { name, trust, groups } => {
                if name.trim().is_empty() || name.contains(char::is_whitespace) {
                    eprintln!("error: --name must be one word, e.g. `ci` or `ana`");
                    return exit::USAGE;
                }
                if parse_token_trust(trust).is_none() {
                    eprintln!("error: --trust must be basic, trusted or admin");
                    return exit::USAGE;
                }
                let token = match new_token() {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("error: no randomness from the operating system: {e}");
                        return exit::USAGE;
                    }
                };
                let groups: Vec<String> = groups.iter().map(|g| g.trim().to_string()).filter(|g| !g.is_empty()).collect();
                let row = TokenRow {
                    name: name.clone(),
                    hash: hash_token(&token),
                    trust: trust.clone(),
                    groups,
                    created_at: rfc3339(now_ms()),
                    revoked_at: None,
                };
                match rt.store.token_create(row).await {
                    Ok(()) => {
                        eprintln!("token `{name}` (trust {trust}) created; it is shown only now:");
                        println!("{token}");
                        exit::OK
                    }
                    Err(e) => {
                        crate::output::error(&e);
                        exit::ERRORS
                    }
                }
            }
            TokenAction::List { json } => match rt.store.tokens().await {
                Ok(list) => {
                    if *json {
                        let v: Vec<_> = list
                            .iter()
                            .map(|t| serde_json::json!({"name": t.name, "trust": t.trust, "groups": t.groups, "created_at": t.created_at, "revoked_at": t.revoked_at}))
                            .collect();
                        println!("{}", serde_json::json!({"tokens": v}));
                    } else {
                        println!("{:<20} {:<8} {:<24} {:<26} REVOKED", "NAME", "TRUST", "GROUPS", "CREATED");
                        for t in &list {
                            println!("{:<20} {:<8} {:<24} {:<26} {}", t.name, t.trust, t.groups.join(","), t.created_at, t.revoked_at.as_deref().unwrap_or("-"));
                        }
                    }
                    exit::OK
                }
                Err(e) => {
                    crate::output::error(&e);
                    exit::ERRORS
                }
            },
            TokenAction::Revoke { name } => match rt.store.token_revoke(name).await {
                Ok(true) => {
                    eprintln!("token `{name}` revoked");
                    exit::OK
                }
                Ok(false) => {
                    eprintln!("error: no live token named `{name}` (see `aosc token list`)");
                    exit::ERRORS
                }
                Err(e) => {
                    crate::output::error(&e);
                    exit::ERRORS
                }
            },
        }
    })
}
