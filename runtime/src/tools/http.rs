//! `http.get`, `http.request` and user tools declared with `http: "METHOD
//! URL"`, through reqwest (rustls): a 30 s overall timeout (a step's own
//! `timeout:` may cut it shorter), at most 5 redirects, and a response body
//! bound of 1 MiB; loopback, private and metadata addresses refused unless
//! allowed (the outbound guard, [`super::guard`]).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method};
use serde_json::{json, Value};

use super::guard::{Guard, GuardError};
use super::{Tool, ToolCtx, ToolError};
use crate::store::BoxFuture;

/// The largest response body a tool accepts.
pub const MAX_BODY: usize = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_REDIRECTS: usize = 5;

/// The client of a runtime's HTTP tools (one connection pool) with its
/// outbound guard (see [`super::guard`]).
#[derive(Clone)]
pub struct HttpClient {
    pub client: Client,
    pub guard: Arc<Guard>,
}

/// The shared client of a runtime's HTTP tools.
pub fn client(guard: Guard) -> Result<HttpClient, ToolError> {
    client_with_timeout(TIMEOUT, guard)
}

/// A client with another overall timeout (tests, embedders).
pub fn client_with_timeout(timeout: Duration, guard: Guard) -> Result<HttpClient, ToolError> {
    let guard = Arc::new(guard);
    let builder = Client::builder()
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("aos-runtime/", env!("CARGO_PKG_VERSION")));
    let client = super::guard::install(builder, guard.clone(), MAX_REDIRECTS)
        .build()
        .map_err(|e| ToolError::Unavailable(format!("cannot build the HTTP client: {e}")))?;
    Ok(HttpClient { client, guard })
}

fn headers(v: Option<&Value>) -> Result<HeaderMap, ToolError> {
    let mut map = HeaderMap::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for (k, v) in o {
                let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| ToolError::BadInput(format!("`{k}` is not a valid header name")))?;
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let value = HeaderValue::from_str(&text).map_err(|_| ToolError::BadInput(format!("header `{k}` has an invalid value")))?;
                map.insert(name, value);
            }
        }
        Some(other) => return Err(ToolError::BadInput(format!("`headers` must be an object of name: value, got {other}"))),
    }
    Ok(map)
}

fn describe(e: &reqwest::Error, url: &str) -> ToolError {
    // reqwest's own message hides its causes (the guard's refusal, the
    // connection error): name them.
    let mut causes = String::new();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        let text = c.to_string();
        if !causes.contains(&text) {
            causes.push_str(": ");
            causes.push_str(&text);
        }
        src = c.source();
    }
    // A refusal by the guard (in the resolver) is a denial, whatever
    // reqwest calls it.
    let mut denied = false;
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        denied |= matches!(c.downcast_ref::<GuardError>(), Some(GuardError::Refused(_)));
        src = c.source();
    }
    if e.is_timeout() {
        ToolError::Timeout(format!("HTTP request to {url} timed out (no complete answer within the tool's timeout)"))
    } else if e.is_redirect() {
        ToolError::Denied(format!("HTTP request to {url} was not followed{causes}"))
    } else if e.is_connect() {
        let m = format!("cannot connect to {url}{causes}");
        if denied { ToolError::Denied(m) } else { ToolError::Transport(m) }
    } else {
        ToolError::Transport(format!("HTTP request to {url} failed: {e}{causes}"))
    }
}

/// Sends the request (once the guard has passed its URL) and reads at
/// most [`MAX_BODY`] bytes of the answer.
async fn send(guard: &Guard, req: reqwest::RequestBuilder, url: &str) -> Result<(u16, Option<String>, String), ToolError> {
    let (client, req) = req.build_split();
    let req = req.map_err(|e| ToolError::BadInput(format!("`{url}`: {e}")))?;
    guard.check_url(req.url()).await.map_err(|e| match e {
        GuardError::Refused(_) => ToolError::Denied(format!("HTTP request to {url} {e}")),
        GuardError::Unresolved { .. } => ToolError::Transport(format!("HTTP request to {url} {e}")),
        GuardError::NoHost(_) | GuardError::NoAddress(_) => ToolError::BadInput(format!("HTTP request to {url} {e}")),
    })?;
    let mut resp = client.execute(req).await.map_err(|e| describe(&e, url))?;
    let status = resp.status().as_u16();
    let ctype = resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ToolError::Failed(format!("the response from {url} is larger than the {} KiB bound", MAX_BODY / 1024)));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e, url))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ToolError::Failed(format!("the response from {url} is larger than the {} KiB bound", MAX_BODY / 1024)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, ctype, String::from_utf8_lossy(&body).into_owned()))
}

fn str_arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, ToolError> {
    args.get(name).and_then(Value::as_str).ok_or_else(|| ToolError::BadInput(format!("missing String argument `{name}`")))
}

fn check_url(url: &str) -> Result<reqwest::Url, ToolError> {
    let u = reqwest::Url::parse(url).map_err(|e| ToolError::BadInput(format!("`{url}` is not a valid URL: {e}")))?;
    match u.scheme() {
        "http" | "https" => Ok(u),
        s => Err(ToolError::Denied(format!("`{url}`: only http:// and https:// URLs are allowed, not {s}://"))),
    }
}

/// A tool error with any password in a URL shown as `***`.
fn redacted(e: ToolError) -> ToolError {
    e.map(|m| crate::redact::url_passwords(&m))
}

/// `http.get(url, headers?) -> String`; a non-2xx status fails the step.
pub struct Get(pub HttpClient);
/// `http.request(method, url, body?, headers?) -> { status, body }`.
pub struct Request(pub HttpClient);

impl Tool for Get {
    fn call<'a>(&'a self, args: Value, _ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move { self.get(args).await.map_err(redacted) })
    }
}

impl Get {
    async fn get(&self, args: Value) -> Result<Value, ToolError> {
        {
            let url = str_arg(&args, "url")?;
            let u = check_url(url)?;
            let req = self.0.client.get(u).headers(headers(args.get("headers"))?);
            let (status, _, body) = send(&self.0.guard, req, url).await?;
            if !(200..300).contains(&status) {
                let snippet: String = body.chars().take(200).collect();
                return Err(ToolError::Failed(format!("GET {url} answered HTTP {status}: {snippet}")));
            }
            Ok(Value::String(body))
        }
    }
}

impl Tool for Request {
    fn call<'a>(&'a self, args: Value, _ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move { self.request(args).await.map_err(redacted) })
    }
}

impl Request {
    async fn request(&self, args: Value) -> Result<Value, ToolError> {
        {
            let method = str_arg(&args, "method")?;
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                .map_err(|_| ToolError::BadInput(format!("`{method}` is not an HTTP method")))?;
            let url = str_arg(&args, "url")?;
            let u = check_url(url)?;
            let mut req = self.0.client.request(m, u).headers(headers(args.get("headers"))?);
            match args.get("body") {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => req = req.body(s.clone()),
                Some(v) => req = req.json(v),
            }
            let (status, _, body) = send(&self.0.guard, req, url).await?;
            Ok(json!({ "status": status, "body": body }))
        }
    }
}

/// A user tool declared `http: "METHOD URL"`: the arguments go as a JSON
/// object in the body (as query parameters for GET, HEAD and DELETE); a JSON
/// answer is returned as JSON, anything else as a string; a non-2xx status
/// fails the step.
pub struct UserHttp {
    pub client: HttpClient,
    pub tool: String,
    pub method: String,
    pub url: String,
}

impl UserHttp {
    /// Calls the endpoint with `args` (a JSON object). A password in the
    /// URL is shown as `***` in any error.
    pub async fn call(&self, args: Value) -> Result<Value, ToolError> {
        self.call_inner(args).await.map_err(redacted)
    }

    async fn call_inner(&self, args: Value) -> Result<Value, ToolError> {
        let m = Method::from_bytes(self.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| ToolError::BadInput(format!("tool `{}`: `{}` is not an HTTP method", self.tool, self.method)))?;
        let mut u = check_url(&self.url)?;
        let in_query = matches!(m, Method::GET | Method::HEAD | Method::DELETE);
        if in_query {
            if let Value::Object(o) = &args {
                let mut q = u.query_pairs_mut();
                for (k, v) in o {
                    match v {
                        Value::Null => {}
                        Value::String(s) => {
                            q.append_pair(k, s);
                        }
                        other => {
                            q.append_pair(k, &other.to_string());
                        }
                    }
                }
            }
        }
        let mut req = self.client.client.request(m.clone(), u);
        if !in_query {
            req = req.json(&args);
        }
        let shown = format!("{} {}", self.method, self.url);
        let (status, ctype, body) = send(&self.client.guard, req, &self.url).await.map_err(|e| e.map(|e| format!("tool `{}`: {e}", self.tool)))?;
        if !(200..300).contains(&status) {
            let snippet: String = body.chars().take(200).collect();
            return Err(ToolError::Failed(format!("tool `{}` ({shown}) answered HTTP {status}: {snippet}", self.tool)));
        }
        let is_json = ctype.as_deref().is_some_and(|c| c.contains("json"));
        Ok(match serde_json::from_str::<Value>(&body) {
            Ok(v) if is_json => v,
            _ => Value::String(body),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_web_urls() {
        assert!(check_url("https://example.com/x").is_ok());
        assert!(check_url("file:///etc/passwd").unwrap_err().to_string().contains("only http"));
        assert!(check_url("not a url").is_err());
        assert!(headers(Some(&json!({"X-A": "1", "X-N": 2}))).is_ok());
        assert!(headers(Some(&json!(["x"]))).is_err());
    }
}
