//! What the three HTTP providers share: the client, one JSON POST, and the
//! classification of failures into "retry this model" and "retrying cannot
//! help" (LANGUAGE.md §6a; docs/runtime.md, Providers).

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::ProviderError;

/// Where a provider sends requests and with which key.
#[derive(Clone)]
pub struct Endpoint {
    /// The provider's name, for messages.
    pub provider: &'static str,
    /// The base URL from the environment or the public default; a model's
    /// `base_url:` overrides it per request.
    pub base_url: String,
    /// The credential. Never formatted into a message (see [`redact`]).
    pub key: String,
    pub client: reqwest::Client,
    pub timeout: Duration,
    /// Ask for token log-probabilities on verification requests, where the
    /// provider offers them (`AOS_LLM_LOGPROBS=1`; some models refuse them).
    pub logprobs: bool,
}

impl Endpoint {
    /// An endpoint with its own client. `timeout` bounds one HTTP request.
    pub fn new(provider: &'static str, base_url: String, key: String, timeout: Duration) -> Result<Endpoint, super::FabricError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("aosc/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| super::FabricError::Client { provider, message: e.to_string() })?;
        Ok(Endpoint { provider, base_url: base_url.trim_end_matches('/').to_string(), key, client, timeout, logprobs: false })
    }

    /// The same endpoint, asking for log-probabilities on verifications.
    pub fn with_logprobs(mut self, on: bool) -> Endpoint {
        self.logprobs = on;
        self
    }

    /// The base URL for a model: its own `base_url:` when it has one.
    pub fn base_for<'a>(&'a self, model_base: Option<&'a str>) -> &'a str {
        model_base.map(|b| b.trim_end_matches('/')).unwrap_or(&self.base_url)
    }

    /// Replaces the key wherever it appears (servers sometimes echo it).
    pub fn redact(&self, text: &str) -> String {
        if self.key.len() >= 4 { text.replace(&self.key, "***") } else { text.to_string() }
    }

    /// POSTs `body` as JSON and returns the parsed JSON reply of a 2xx
    /// response; anything else becomes a classified [`ProviderError`].
    pub async fn post(&self, url: &str, headers: &[(&str, &str)], body: &Value) -> Result<Value, ProviderError> {
        let mut req = self.client.post(url).json(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.map_err(|e| self.transport_error(&e))?;
        if !(200..300).contains(&status) {
            return Err(classify(self.provider, status, &headers, &self.redact(&text)));
        }
        serde_json::from_str::<Value>(&text).map_err(|e| {
            ProviderError::transport(format!(
                "{}: malformed response body (not JSON: {e}): {}",
                self.provider,
                clip(&self.redact(&text), 200)
            ))
        })
    }

    /// POSTs `body` for a streamed reply: the response of a 2xx status,
    /// its body still to read; anything else is classified as by [`post`].
    pub async fn post_stream(&self, url: &str, headers: &[(&str, &str)], body: &Value) -> Result<reqwest::Response, ProviderError> {
        let mut req = self.client.post(url).json(body).header("accept", "text/event-stream");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let headers = resp.headers().clone();
            let text = resp.text().await.map_err(|e| self.transport_error(&e))?;
            return Err(classify(self.provider, status, &headers, &self.redact(&text)));
        }
        Ok(resp)
    }

    pub(crate) fn transport_error(&self, e: &reqwest::Error) -> ProviderError {
        // reqwest's message names the URL, which never carries the key.
        let what = if e.is_timeout() {
            format!("no response within {}", fmt_duration(self.timeout))
        } else if e.is_connect() {
            format!("cannot connect: {}", source_chain(e))
        } else {
            source_chain(e)
        };
        ProviderError::transport(self.redact(&format!("{}: {what}", self.provider)))
    }
}

fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = inner.source();
    }
    s
}

fn fmt_duration(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

/// At most `n` characters of `s`.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() > n { s.chars().take(n).collect::<String>() + "…" } else { s.to_string() }
}

/// The wait a response asks for: `retry-after-ms` (milliseconds, OpenAI and
/// Anthropic), else `retry-after` in seconds or as an HTTP-date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()).filter(|ms| ms.is_finite() && *ms >= 0.0) {
        return Some(Duration::from_millis(ms as u64));
    }
    let value = get("retry-after")?;
    match value.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Some(Duration::from_millis((s * 1000.0) as u64)),
        Ok(_) => None,
        Err(_) => {
            let at = http_date(value)?;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
            Some(Duration::from_secs(at.saturating_sub(now)))
        }
    }
}

/// Seconds since the epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37
/// GMT`), the HTTP-date form `retry-after` may take.
fn http_date(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    let day: u64 = day.parse().ok()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].iter().position(|m| m == month)? as u64 + 1;
    let year: u64 = year.parse().ok()?;
    let hms: Vec<u64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [h, m, sec] = hms.as_slice() else { return None };
    if !(1..=31).contains(&day) || year < 1970 || *h > 23 || *m > 59 || *sec > 60 {
        return None;
    }
    // Days from the civil date (H. Hinnant's algorithm), years from March.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// Turns a non-2xx response into an error the router knows how to treat:
/// 408, 409, 429 and 5xx (Anthropic's 529 included) are worth retrying;
/// 400, 401, 403, other 4xx, and a 429 that reports an exhausted quota or
/// spend limit are not.
pub fn classify(provider: &str, status: u16, headers: &HeaderMap, body: &str) -> ProviderError {
    let json = serde_json::from_str::<Value>(body).ok();
    let err = json.as_ref().and_then(|j| j.get("error"));
    let field = |k: &str| err.and_then(|e| e.get(k)).and_then(Value::as_str).unwrap_or("");
    // OpenAI: {"error": {"message", "type", "code"}}; Anthropic: {"type":
    // "error", "error": {"type", "message"}}; Gemini: {"error": {"code",
    // "message", "status"}}.
    let kind = [field("type"), field("status"), field("code")].into_iter().find(|s| !s.is_empty()).unwrap_or("");
    let message = match field("message") {
        "" => clip(body.trim(), 200),
        m => clip(m, 300),
    };
    let detail_code = err.and_then(|e| e.get("details")).and_then(|d| d.get("error_code")).and_then(Value::as_str).unwrap_or("");
    let lower = message.to_lowercase();
    let quota = field("code") == "insufficient_quota"
        || field("type") == "insufficient_quota"
        || detail_code == "enforced_spend_limit_reached"
        || lower.contains("spend limit")
        || lower.contains("billing")
        || lower.contains("credit balance");
    let label = if kind.is_empty() { String::new() } else { format!(" {kind}") };
    let text = format!("{provider}: HTTP {status}{label}: {message}");
    let retryable = matches!(status, 408 | 409 | 429) || (500..=599).contains(&status);
    if quota {
        return ProviderError::Refused(format!("{text} (quota or spend limit: not retried)"));
    }
    // Gemini answers a bad key with 400 INVALID_ARGUMENT (reason
    // API_KEY_INVALID) rather than 401.
    let bad_key = body.contains("API_KEY_INVALID") || lower.contains("api key not valid");
    if matches!(status, 401 | 403) || bad_key {
        ProviderError::Refused(text)
    } else if retryable {
        ProviderError::Transport { message: text, retry_after: retry_after(headers) }
    } else {
        ProviderError::Fatal(text)
    }
}

/// The probability of a verdict's `true` agreement from the tokens a
/// provider reports with their log-probabilities: the first token that is
/// `true` or `false` is the verdict's `agreement` (the schema lists it first
/// and structured output keeps that order). `None` when it is not `true`.
pub fn agreement_probability<'a>(tokens: impl Iterator<Item = (&'a str, f64)>) -> Option<f64> {
    for (token, logprob) in tokens {
        match token.trim().trim_matches(|c: char| !c.is_alphanumeric()) {
            "true" => return Some(logprob.exp().clamp(0.0, 1.0)),
            "false" => return None,
            _ => {}
        }
    }
    None
}

/// A value at a JSON path of object keys and array indexes.
pub fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = match p.parse::<usize>() {
            Ok(i) => cur.get(i)?,
            Err(_) => cur.get(*p)?,
        };
    }
    Some(cur)
}

/// A token count at `path`, 0 when absent.
pub fn count(v: &Value, path: &[&str]) -> u64 {
    at(v, path).and_then(Value::as_u64).unwrap_or(0)
}

/// Structured-output modes that need an object at the root get the step's
/// schema wrapped as `{"value": schema}`; `unwrap_value` undoes it.
pub fn object_root(schema: &Value) -> (Value, bool) {
    if schema.get("type").and_then(Value::as_str) == Some("object") {
        (schema.clone(), false)
    } else {
        (
            serde_json::json!({"type": "object", "properties": {"value": schema}, "required": ["value"], "additionalProperties": false}),
            true,
        )
    }
}

/// The step's value from a reply produced under a wrapped schema.
pub fn unwrap_value(text: String, wrapped: bool) -> String {
    if !wrapped {
        return text;
    }
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(Value::Object(mut m)) => match m.remove("value") {
            Some(v) => v.to_string(),
            None => text,
        },
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use reqwest::header::HeaderValue;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn retry_after_prefers_milliseconds() {
        assert_eq!(retry_after(&h(&[("retry-after", "3"), ("retry-after-ms", "250")])), Some(Duration::from_millis(250)));
        assert_eq!(retry_after(&h(&[("retry-after", "2")])), Some(Duration::from_secs(2)));
        // An HTTP-date in the past means now.
        assert_eq!(retry_after(&h(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")])), Some(Duration::ZERO));
        assert_eq!(retry_after(&h(&[("retry-after", "soon")])), None);
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(http_date("Tue, 29 Feb 2028 12:00:00 GMT"), Some(1_835_438_400));
    }

    #[test]
    fn classification() {
        let none = HeaderMap::new();
        let rate = r#"{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}"#;
        assert!(matches!(classify("openai", 429, &none, rate), ProviderError::Transport { .. }));
        let quota = r#"{"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}}"#;
        assert!(matches!(classify("openai", 429, &none, quota), ProviderError::Refused(_)));
        let spend = r#"{"type": "error", "error": {"type": "rate_limit_error", "message": "limit", "details": {"error_code": "enforced_spend_limit_reached"}}}"#;
        assert!(matches!(classify("anthropic", 429, &none, spend), ProviderError::Refused(_)));
        let over = r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#;
        assert!(matches!(classify("anthropic", 529, &none, over), ProviderError::Transport { .. }));
        for s in [408, 409, 500, 502, 503] {
            assert!(matches!(classify("x", s, &none, ""), ProviderError::Transport { .. }), "{s}");
        }
        for s in [400, 404, 422] {
            assert!(matches!(classify("x", s, &none, ""), ProviderError::Fatal(_)), "{s}");
        }
        for s in [401, 403] {
            assert!(matches!(classify("x", s, &none, ""), ProviderError::Refused(_)), "{s}");
        }
        let gemini_key = r#"{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}}"#;
        assert!(matches!(classify("gemini", 400, &none, gemini_key), ProviderError::Refused(_)));
        let e = classify("gemini", 403, &none, r#"{"error": {"code": 403, "message": "API key not valid", "status": "PERMISSION_DENIED"}}"#);
        assert_eq!(e.to_string(), "gemini: HTTP 403 PERMISSION_DENIED: API key not valid");
    }
}
