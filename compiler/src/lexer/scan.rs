//! The scanner around logos: nesting of brackets and interpolations,
//! comments, and string literals (escapes, `"""` indentation).

use super::*;

/// How deeply brackets and interpolations may nest. Deeper input is
/// reported and not lexed further, which bounds the recursion of the parser
/// and of every pass that walks the tree.
pub const MAX_NESTING: usize = 128;

/// How deeply strings may nest inside interpolations (each level costs the
/// parser far more stack than a bracket does).
pub const MAX_STRING_NESTING: usize = 16;

pub(super) struct Lx<'s> {
    pub(super) src: &'s str,
    pub(super) file: FileId,
    pub(super) out: Lexed<'s>,
    /// Brackets and interpolations open at this point.
    pub(super) nest: usize,
    /// Interpolations open at this point.
    pub(super) interp: usize,
    /// Set when nesting went too deep: nothing more is lexed.
    pub(super) stopped: bool,
}

/// A piece of a string literal before cooking.
pub(super) enum Piece<'s> {
    /// Raw source text `start..end`.
    Text(usize, usize),
    /// An interpolation: the span of `{`, its tokens, the span of `}`.
    Interp(Span, Vec<(Token<'s>, Span)>, Span),
}

impl<'s> Lx<'s> {
    pub(super) fn error(&mut self, span: Span, message: impl Into<String>) -> &mut Diagnostic {
        self.out
            .diagnostics
            .push(Diagnostic::error(SYNTAX, self.file, span, message));
        let last = self.out.diagnostics.len() - 1;
        // The vector is not empty: we just pushed.
        #[allow(clippy::indexing_slicing)]
        &mut self.out.diagnostics[last]
    }

    /// Lexes `pos..limit`. In an interpolation, stops at the `}` that closes
    /// it and returns its offset; otherwise returns `None` at `limit`.
    pub(super) fn run(&mut self, mut pos: usize, limit: usize, in_interp: bool) -> Option<usize> {
        if self.stopped {
            return None;
        }
        let mut depth = 0usize;
        let mut stray: Option<Span> = None;
        'restart: loop {
            let Some(rest) = self.src.get(pos..limit) else {
                break;
            };
            let mut lexer = Token::lexer(rest);
            while let Some(result) = lexer.next() {
                let r = lexer.span();
                let span = Span::new(pos + r.start, pos + r.end);
                let tok = match result {
                    Ok(tok) => tok,
                    Err(()) => {
                        stray = Some(match stray {
                            Some(s) if s.end == span.start => s.join(span),
                            Some(s) => {
                                self.report_stray(s);
                                span
                            }
                            None => span,
                        });
                        continue;
                    }
                };
                if let Some(s) = stray.take() {
                    self.report_stray(s);
                }
                match tok {
                    Token::Quote | Token::TripleQuote => {
                        let triple = matches!(tok, Token::TripleQuote);
                        pos = self.string(span, triple, limit);
                        continue 'restart;
                    }
                    Token::LineComment => self.comment(CommentKind::Line, span),
                    Token::DocComment => self.comment(CommentKind::Doc, span),
                    Token::BlockComment(closed) => {
                        self.comment(CommentKind::Block, span);
                        if !closed {
                            let open = Span::new(span.start as usize, span.start as usize + 2);
                            self.error(open, "unterminated block comment")
                                .with_primary_label_mut("this comment is never closed with `*/`");
                        }
                    }
                    Token::BadNumber(text) => {
                        let what = if text.starts_with('$') { "an amount" } else { "a number or a duration" };
                        self.error(span, format!("`{text}` is not {what}"))
                            .with_primary_label_mut("a number must not run into letters")
                            .with_help_mut("durations are written `250ms 30s 5m 2h 1d`; put a space or an operator between a number and a name");
                        self.out.tokens.push((tok, span));
                    }
                    Token::LParen | Token::LBracket | Token::LBrace => {
                        if !self.open(span) {
                            return None;
                        }
                        if tok == Token::LBrace {
                            depth += 1;
                        }
                        self.out.tokens.push((tok, span));
                    }
                    Token::RBrace => {
                        if in_interp && depth == 0 {
                            return Some(span.start as usize);
                        }
                        depth = depth.saturating_sub(1);
                        self.nest = self.nest.saturating_sub(1);
                        self.out.tokens.push((tok, span));
                    }
                    Token::RParen | Token::RBracket => {
                        self.nest = self.nest.saturating_sub(1);
                        self.out.tokens.push((tok, span));
                    }
                    _ => self.out.tokens.push((tok, span)),
                }
            }
            break;
        }
        if let Some(s) = stray {
            self.report_stray(s);
        }
        None
    }

    /// Enters one level of nesting at `span`; `false` (after reporting it)
    /// when that is too deep.
    pub(super) fn open(&mut self, span: Span) -> bool {
        self.nest += 1;
        if self.nest > MAX_NESTING {
            self.error(span, "brackets and strings are nested too deeply")
                .with_primary_label_mut(format!("more than {MAX_NESTING} levels deep"))
                .with_help_mut("the rest of the file is not read; split the expression into steps");
            self.stopped = true;
        }
        !self.stopped
    }

    pub(super) fn report_stray(&mut self, span: Span) {
        let text = self.src.get(span.range()).unwrap_or("");
        let msg = if text.chars().count() == 1 {
            format!("unexpected character `{text}`")
        } else {
            format!("unexpected characters `{text}`")
        };
        self.error(span, msg)
            .with_primary_label_mut("not part of the language");
    }

    pub(super) fn comment(&mut self, kind: CommentKind, span: Span) {
        let text = self
            .src
            .get(span.range())
            .unwrap_or("")
            .trim_end_matches('\r')
            .to_string();
        let span = Span::new(span.start as usize, span.start as usize + text.len());
        self.out.comments.push(Comment { kind, text, span });
    }

    /// Scans a string whose opening quote(s) are at `open`; returns the offset
    /// after it.
    pub(super) fn string(&mut self, open: Span, triple: bool, limit: usize) -> usize {
        let bytes = self.src.as_bytes();
        let content_start = open.end as usize;
        let mut pieces: Vec<Piece<'s>> = Vec::new();
        let mut text_start = content_start;
        let mut i = content_start;
        // A one-line string may not run past its line: stop there so an
        // unterminated string does not swallow the rest of the file.
        let line_limit = if triple {
            limit
        } else {
            self.src
                .get(content_start..limit)
                .and_then(|r| r.find('\n'))
                .map_or(limit, |n| content_start + n)
        };
        let close: Option<(usize, usize)> = loop {
            if i >= line_limit {
                break None;
            }
            match bytes.get(i) {
                Some(b'\\') => {
                    let next = self
                        .src
                        .get(i + 1..line_limit)
                        .and_then(|r| r.chars().next());
                    match next {
                        Some('n' | 't' | 'r' | '"' | '\\' | '{' | '}') => i += 2,
                        Some(c) => {
                            let end = i + 1 + c.len_utf8();
                            let shown = if c == '\n' {
                                "\\<newline>".to_string()
                            } else {
                                format!("\\{c}")
                            };
                            self.error(
                                Span::new(i, end),
                                format!("unknown escape `{shown}` in a string"),
                            )
                            .with_primary_label_mut("not an escape")
                                .with_help_mut("the escapes are \\n \\t \\r \\\" \\\\ \\{ \\}");
                            i = end;
                        }
                        None => i += 1,
                    }
                }
                Some(b'"') => {
                    if !triple {
                        break Some((i, i + 1));
                    }
                    if bytes.get(i + 1) == Some(&b'"') && bytes.get(i + 2) == Some(&b'"') {
                        // `""""` ends with the last three quotes, like Kotlin.
                        let mut j = i;
                        while bytes.get(j + 3) == Some(&b'"') {
                            j += 1;
                        }
                        break Some((j, j + 3));
                    }
                    i += 1;
                }
                Some(b'{') => {
                    if text_start < i {
                        pieces.push(Piece::Text(text_start, i));
                    }
                    let open_brace = Span::new(i, i + 1);
                    self.interp += 1;
                    if self.interp > MAX_STRING_NESTING && !self.stopped {
                        self.error(Span::new(i, i + 1), "strings are nested too deeply")
                            .with_primary_label_mut(format!("more than {MAX_STRING_NESTING} interpolations deep"))
                            .with_help_mut("the rest of the file is not read; compute the inner text in a separate step");
                        self.stopped = true;
                    }
                    if !self.open(Span::new(i, i + 1)) {
                        self.interp -= 1;
                        break None;
                    }
                    let saved = std::mem::take(&mut self.out.tokens);
                    let diags_before = self.out.diagnostics.len();
                    let end = self.run(i + 1, line_limit, true);
                    self.nest = self.nest.saturating_sub(1);
                    self.interp -= 1;
                    let inner = std::mem::replace(&mut self.out.tokens, saved);
                    if self.stopped {
                        pieces.push(Piece::Interp(Span::new(i, i + 1), inner, Span::new(line_limit, line_limit)));
                        break None;
                    }
                    match end {
                        Some(end) => {
                            let close_brace = Span::new(end, end + 1);
                            if inner.is_empty() {
                                self.error(open_brace.join(close_brace), "empty interpolation `{}`")
                                    .with_primary_label_mut("nothing to interpolate")
                                    .with_help_mut("put an expression between the braces, or write `\\{` for a literal brace");
                            } else {
                                pieces.push(Piece::Interp(open_brace, inner, close_brace));
                            }
                            i = end + 1;
                            text_start = i;
                        }
                        None => {
                            // What went wrong inside is a consequence of the
                            // missing `}`: report that alone.
                            self.out.diagnostics.truncate(diags_before);
                            self.error(
                                open_brace,
                                "expected `}` to close the interpolation opened here",
                            )
                            .with_primary_label_mut("this `{` is never closed");
                            // Keep what was lexed so the parser still sees it.
                            pieces.push(Piece::Interp(
                                open_brace,
                                inner,
                                Span::new(line_limit, line_limit),
                            ));
                            text_start = line_limit;
                            i = line_limit;
                            break None;
                        }
                    }
                }
                Some(_) => {
                    let len = self
                        .src
                        .get(i..)
                        .and_then(|r| r.chars().next())
                        .map_or(1, char::len_utf8);
                    i += len;
                }
                None => break None,
            }
        };
        let content_end = close.map_or(line_limit.min(i.max(content_start)), |(s, _)| s);
        if text_start < content_end {
            pieces.push(Piece::Text(text_start, content_end));
        }
        if close.is_none() && !self.stopped
            && !self
                .out
                .diagnostics
                .last()
                .is_some_and(|d| d.message.contains("interpolation"))
        {
            let what = if triple { "`\"\"\"`" } else { "`\"`" };
            self.error(open, "unterminated string")
                .with_primary_label_mut(format!("this string is never closed with {what}"));
        }
        let skips = if triple {
            trim_indent_skips(self.src, content_start, content_end, &pieces)
        } else {
            Vec::new()
        };

        self.out.tokens.push((Token::StrStart(triple), open));
        for piece in pieces {
            match piece {
                Piece::Text(a, b) => {
                    let text = cook(self.src, a, b, &skips);
                    if !text.is_empty() {
                        self.out
                            .tokens
                            .push((Token::StrText(text), Span::new(a, b)));
                    }
                }
                Piece::Interp(o, inner, c) => {
                    self.out.tokens.push((Token::InterpStart, o));
                    self.out.tokens.extend(inner);
                    self.out.tokens.push((Token::InterpEnd, c));
                }
            }
        }
        let (end_span, after) = match close {
            Some((a, b)) => (Span::new(a, b), b),
            None => (Span::new(content_end, content_end), content_end),
        };
        self.out.tokens.push((Token::StrEnd, end_span));
        after
    }
}

/// Byte ranges of a triple-quoted string's raw text that `trimIndent`
/// removes: a blank first and last line, and the common indentation.
pub(super) fn trim_indent_skips(
    src: &str,
    start: usize,
    end: usize,
    pieces: &[Piece<'_>],
) -> Vec<(usize, usize)> {
    // Line starts: the content start and after every newline of literal
    // text (newlines inside interpolations do not start lines).
    let mut starts = vec![start];
    for p in pieces {
        if let Piece::Text(a, b) = *p {
            let text = src.get(a..b).unwrap_or("");
            starts.extend(text.match_indices('\n').map(|(n, _)| a + n + 1));
        }
    }
    // Each line as (start, end without its newline, start of the next
    // line). A `\r\n` ends a line as `\n` does, and its `\r` is dropped,
    // so that a CRLF file gives the same string as an LF one.
    let bytes = src.as_bytes();
    let cr_before = |nl: usize| nl > start && bytes.get(nl - 1) == Some(&b'\r');
    let lines: Vec<(usize, usize, usize)> = starts
        .iter()
        .enumerate()
        .map(|(k, &s)| match starts.get(k + 1) {
            Some(&next) => {
                let nl = next - 1;
                (s, if cr_before(nl) { nl - 1 } else { nl }, next)
            }
            None => (s, end, end),
        })
        .collect();
    let line_text = |(a, b, _): (usize, usize, usize)| src.get(a..b).unwrap_or("");
    let blank = |l: (usize, usize, usize)| line_text(l).chars().all(|c| c == ' ' || c == '\t');
    let indent = |l: (usize, usize, usize)| {
        line_text(l)
            .bytes()
            .take_while(|b| *b == b' ' || *b == b'\t')
            .count()
    };
    let min_indent = lines
        .iter()
        .filter(|l| !blank(**l))
        .map(|l| indent(*l))
        .min()
        .unwrap_or(0);
    let mut skips = Vec::new();
    let last = lines.len().saturating_sub(1);
    for (k, &l) in lines.iter().enumerate() {
        if k == 0 && blank(l) {
            // The line and its newline.
            skips.push((l.0, l.2.min(end)));
            continue;
        }
        if k == last && k > 0 && blank(l) {
            // The line and the newline (`\n` or `\r\n`) before it.
            let nl = l.0 - 1;
            skips.push((if cr_before(nl) { nl - 1 } else { nl }, l.1));
            continue;
        }
        let n = min_indent.min(line_text(l).len());
        if n > 0 {
            skips.push((l.0, l.0 + n));
        }
        if l.1 < l.2 && l.2 - l.1 == 2 {
            // The `\r` of this line's `\r\n`.
            skips.push((l.1, l.1 + 1));
        }
    }
    skips.sort_unstable();
    skips
}

/// The value of raw string text `a..b`: escapes processed, `skips` removed.
/// Borrowed from the source when there is nothing to process (most text).
pub(super) fn cook<'s>(src: &'s str, a: usize, b: usize, skips: &[(usize, usize)]) -> Cow<'s, str> {
    let raw = src.get(a..b).unwrap_or("");
    if !raw.contains('\\') && !skips.iter().any(|&(s, e)| s < b && a < e) {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices().peekable();
    let mut skip_idx = 0;
    while let Some((off, c)) = chars.next() {
        let at = a + off;
        while skips.get(skip_idx).is_some_and(|s| s.1 <= at) {
            skip_idx += 1;
        }
        if skips.get(skip_idx).is_some_and(|s| s.0 <= at && at < s.1) {
            continue;
        }
        if c == '\\' {
            match chars.next().map(|(_, e)| e) {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(e @ ('"' | '\\' | '{' | '}')) => out.push(e),
                // Reported while scanning.
                Some(_) | None => {}
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Small builder helpers used on a diagnostic already pushed.
trait DiagMut {
    fn with_primary_label_mut(&mut self, text: impl Into<String>) -> &mut Self;
    fn with_help_mut(&mut self, text: impl Into<String>) -> &mut Self;
}

impl DiagMut for Diagnostic {
    fn with_primary_label_mut(&mut self, text: impl Into<String>) -> &mut Self {
        self.primary_label = text.into();
        self
    }
    fn with_help_mut(&mut self, text: impl Into<String>) -> &mut Self {
        self.help = Some(text.into());
        self
    }
}
