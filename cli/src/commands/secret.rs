//! `aosc secret`: the encrypted secrets store under `AOS_HOME` (what
//! `secret("NAME")` resolves first, before the environment).

use std::io::Read;

use aos_runtime::secrets::SecretStore;

use super::exit;
use super::runtime as rtx;

/// Set, list and remove secrets (encrypted at rest; the key is
/// `AOS_SECRET_KEY`, or `AOS_HOME/secret.key` made with mode 0600 on first use).
#[derive(clap::Args)]
#[command(after_help = "Examples:
  printf %s \"$TOKEN\" | aosc secret set API_TOKEN     the value is read from stdin, never from the command line
  aosc secret set API_TOKEN < token.txt              setting it again rotates it (runs resolve the new value from then on)
  aosc secret list
  aosc secret rm API_TOKEN")]
pub struct SecretArgs {
    #[command(subcommand)]
    pub action: SecretAction,
}

#[derive(clap::Subcommand)]
pub enum SecretAction {
    /// Set or rotate a secret; its value is read from stdin (one trailing newline dropped).
    Set { name: String },
    /// The names held and when each was set (never the values).
    List {
        /// One JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret.
    Rm { name: String },
}

pub fn run(args: &SecretArgs) -> u8 {
    let store = SecretStore::new(&rtx::home());
    match &args.action {
        SecretAction::Set { name } => {
            let mut value = String::new();
            if let Err(e) = std::io::stdin().take(1 << 20).read_to_string(&mut value) {
                eprintln!("error: cannot read the secret's value from stdin: {e}");
                return exit::USAGE;
            }
            let value = value.strip_suffix('\n').map(|v| v.strip_suffix('\r').unwrap_or(v)).unwrap_or(&value);
            match store.set(name, value) {
                Ok(generation) => {
                    eprintln!("secret `{name}` set (generation {generation})");
                    exit::OK
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::USAGE
                }
            }
        }
        SecretAction::List { json } => match store.list() {
            Ok(list) => {
                if *json {
                    outln!("{}", serde_json::to_string(&list).unwrap_or_default());
                } else {
                    for l in list {
                        outln!("{}\t{}\tgeneration {}", l.name, l.updated_at, l.generation);
                    }
                }
                exit::OK
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit::ERRORS
            }
        },
        SecretAction::Rm { name } => match store.remove(name) {
            Ok(true) => {
                eprintln!("secret `{name}` removed");
                exit::OK
            }
            Ok(false) => {
                eprintln!("error: no secret `{name}` in the store");
                exit::ERRORS
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit::ERRORS
            }
        },
    }
}
