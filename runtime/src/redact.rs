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
