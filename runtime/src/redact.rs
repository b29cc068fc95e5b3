//! Hiding credentials in text that leaves a step: error messages, logs,
//! stored records and events. Never applied to a value the program computed.

/// `text` with the password of every URL in it (`scheme://user:pass@host`)
/// replaced by `***`.
pub fn url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let start = i + 3;
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| "/?# \t\r\n\"'`<>()[]{},;".contains(c))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Whether `text` holds a URL with a password.
pub fn has_url_password(text: &str) -> bool {
    text.contains("://") && text.contains('@') && url_passwords(text) != text
}

/// Hides URL passwords in every string inside `v`, in place (strings
/// without `://` are not touched, so this costs a walk and no allocation).
pub fn url_passwords_in(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) if has_url_password(s) => *s = url_passwords(s),
        Value::Array(items) => items.iter_mut().for_each(url_passwords_in),
        Value::Object(m) => m.values_mut().for_each(url_passwords_in),
        _ => {}
    }
}

fn hide_in_text(s: &mut String) {
    if has_url_password(s) {
        *s = url_passwords(s);
    }
}

/// Hides URL passwords in the free text and values a transition carries
/// (outputs, errors, reasons, notes), before it is journaled or published.
pub fn transition_url_passwords(t: &mut crate::events::Transition) {
    use crate::events::Transition as T;
    match t {
        T::RunStarted { inputs, .. } => url_passwords_in(inputs),
        T::StepSkipped { reason, .. } | T::ApprovalRequested { reason, .. } | T::RunPaused { reason } => hide_in_text(reason),
        T::AttemptFailed { error, .. } | T::StepFailed { error, .. } | T::RunFailed { error, .. } => hide_in_text(error),
        T::ItemSucceeded { output, .. } | T::RunSucceeded { output, .. } => url_passwords_in(output),
        T::StepSucceeded { output: Some(output), .. } => url_passwords_in(output),
        T::ApprovalGranted { note: Some(n), .. } | T::ApprovalDenied { note: Some(n), .. } => hide_in_text(n),
        T::Routed { data, .. } => url_passwords_in(data),
        T::AgentTurn { text, .. } => hide_in_text(text),
        T::AgentTool { args, output, error, .. } => {
            url_passwords_in(args);
            if let Some(o) = output {
                url_passwords_in(o);
            }
            if let Some(e) = error {
                hide_in_text(e);
            }
        }
        _ => {}
    }
}

/// The first string inside `v` that holds a URL with a password, shown
/// with the password hidden.
pub fn first_url_password(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::String(s) if has_url_password(s) => Some(url_passwords(s)),
        Value::Array(items) => items.iter().find_map(first_url_password),
        Value::Object(m) => m.values().find_map(first_url_password),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::url_passwords;

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(
            url_passwords(
                "cannot connect to http://admin:hunter2@127.0.0.1:9/x (for url (http://admin:hunter2@127.0.0.1:9/x))"
            ),
            "cannot connect to http://admin:***@127.0.0.1:9/x (for url (http://admin:***@127.0.0.1:9/x))"
        );
        assert_eq!(
            url_passwords("postgres://u:p%40ss@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(
            url_passwords("https://user@h/a:b@c"),
            "https://user@h/a:b@c"
        );
        assert_eq!(url_passwords("no url: a@b:c"), "no url: a@b:c");
        assert_eq!(url_passwords("x://"), "x://");
    }
}
