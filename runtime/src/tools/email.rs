//! `email.send` over SMTP (lettre) to the relay `AOS_SMTP_URL`, from
//! `AOS_SMTP_FROM`. The Message-ID is derived from the step's idempotency
//! key (or, without one, from the run and step), so the same logical mail
//! always carries the same Message-ID: the runtime's idempotency table stops
//! a resumed or repeated run from sending it again, and a receiver can drop
//! the rare duplicate (a crash between the relay's `250` and the journal
//! commit) by its Message-ID.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{Tool, ToolCtx, ToolError};
use crate::store::BoxFuture;

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// `AOS_SMTP_TLS`: `opportunistic` (the default: STARTTLS whenever the
/// relay offers it, with the certificate verified against the web's root
/// CAs), `required` (STARTTLS or no mail), or `none` (plaintext, for a
/// local relay whose certificate cannot be verified).
fn tls_mode(host: &str, mode: Option<&str>) -> Result<lettre::transport::smtp::client::Tls, ToolError> {
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    let params = || TlsParameters::new(host.to_string()).map_err(|e| config(format!("cannot set up TLS for the SMTP relay {host}: {e}")));
    match mode.map(str::trim).unwrap_or("") {
        "" | "opportunistic" => Ok(Tls::Opportunistic(params()?)),
        "required" => Ok(Tls::Required(params()?)),
        "none" => Ok(Tls::None),
        other => Err(config(format!("AOS_SMTP_TLS `{other}`: expected opportunistic (the default), required or none"))),
    }
}

/// The relay configuration.
#[derive(Clone, Debug, Default)]
pub struct Send {
    pub url: Option<String>,
    pub from: Option<String>,
    /// `AOS_SMTP_TLS` (see [`tls_mode`]).
    pub tls: Option<String>,
}

#[derive(Debug)]
struct Relay {
    host: String,
    port: u16,
    creds: Option<Credentials>,
}

/// Parses `smtp://[user[:password]@]host[:port]` (port 25 by default).
/// A misconfigured relay: the tool cannot work in this runtime.
fn config(message: impl Into<String>) -> ToolError {
    ToolError::Unavailable(message.into())
}

fn relay(url: &str) -> Result<Relay, ToolError> {
    let rest = if let Some(r) = url.strip_prefix("smtp://") {
        r
    } else if url.starts_with("smtps://") {
        return Err(config("AOS_SMTP_URL: smtps:// (TLS) relays are not supported by this build; use a local smtp:// relay"));
    } else {
        return Err(config("AOS_SMTP_URL: expected smtp://host:port"));
    };
    let rest = rest.trim_end_matches('/');
    let (creds, hostport) = match rest.rsplit_once('@') {
        Some((c, h)) => {
            let (u, p) = c.split_once(':').unwrap_or((c, ""));
            (Some(Credentials::new(u.to_string(), p.to_string())), h)
        }
        None => (None, rest),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| config(format!("AOS_SMTP_URL: bad port `{p}`")))?),
        None => (hostport, 25),
    };
    if host.is_empty() {
        return Err(config("AOS_SMTP_URL: no host"));
    }
    Ok(Relay { host: host.trim_start_matches('[').trim_end_matches(']').to_string(), port, creds })
}

/// The Message-ID for an idempotency key: the same key, the same id.
pub fn message_id(key: &str, from: &Mailbox) -> String {
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    let domain = from.email.domain();
    format!("<aos-{}@{domain}>", digest.get(..32).unwrap_or(&digest))
}

fn arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, ToolError> {
    args.get(name).and_then(Value::as_str).ok_or_else(|| ToolError::BadInput(format!("missing String argument `{name}`")))
}

impl Tool for Send {
    fn call<'a>(&'a self, args: Value, ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let url = self.url.as_deref().ok_or_else(|| config("email.send needs a relay: set AOS_SMTP_URL (e.g. smtp://127.0.0.1:2525)"))?;
            let from = self.from.as_deref().ok_or_else(|| config("email.send needs a sender: set AOS_SMTP_FROM (e.g. reports@example.com)"))?;
            let from: Mailbox = from.parse().map_err(|e| config(format!("AOS_SMTP_FROM `{from}` is not an address: {e}")))?;
            let relay = relay(url)?;
            let to = arg(&args, "to")?;
            let key = ctx.idempotency_key.clone().unwrap_or_else(|| format!("{}/{}", ctx.run_id, ctx.step));
            let id = message_id(&key, &from);
            let mut builder = Message::builder().from(from).message_id(Some(id.clone()));
            for addr in to.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                let mb: Mailbox = addr.parse().map_err(|e| ToolError::BadInput(format!("`to`: `{addr}` is not an email address: {e}")))?;
                builder = builder.to(mb);
            }
            let message = builder
                .subject(arg(&args, "subject")?)
                .header(ContentType::TEXT_PLAIN)
                .body(arg(&args, "body")?.to_string())
                .map_err(|e| ToolError::BadInput(format!("cannot build the email: {e}")))?;
            let mut t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(relay.host.clone())
                .port(relay.port)
                .timeout(Some(SMTP_TIMEOUT))
                .tls(tls_mode(&relay.host, self.tls.as_deref())?);
            if let Some(c) = relay.creds {
                t = t.credentials(c);
            }
            let where_ = format!("{}:{}", relay.host, relay.port);
            t.build().send(message).await.map_err(|e| {
                let code = e.status().map(|c| format!(" ({c})")).unwrap_or_default();
                let m = format!("the SMTP relay {where_} did not accept the email{code}: {e}");
                if e.is_permanent() || e.is_transient() { ToolError::Failed(m) } else if e.is_timeout() { ToolError::Timeout(m) } else { ToolError::Transport(m) }
            })?;
            Ok(json!({ "message_id": id }))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn relay_urls_parse() {
        let r = relay("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((r.host.as_str(), r.port, r.creds.is_none()), ("127.0.0.1", 2525, true));
        let r = relay("smtp://u:p@mail.example.com").unwrap();
        assert_eq!((r.host.as_str(), r.port, r.creds.is_some()), ("mail.example.com", 25, true));
        assert!(relay("smtps://x:465").unwrap_err().to_string().contains("not supported"));
        assert!(relay("smtp://h:x").is_err());
    }

    #[test]
    fn message_ids_follow_the_key() {
        let from: Mailbox = "r@example.com".parse().unwrap();
        assert_eq!(message_id("k1", &from), message_id("k1", &from));
        assert_ne!(message_id("k1", &from), message_id("k2", &from));
        assert!(message_id("k1", &from).ends_with("@example.com>"));
    }
}
