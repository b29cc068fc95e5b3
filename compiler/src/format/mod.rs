//! The formatter: one canonical layout for a file, comments kept, idempotent.
//!
//! The printer walks the syntax tree in source order. Comments are not part
//! of the tree, so before it prints a node the printer prints every comment
//! that starts before that node ([`Printer::at`]). Comments therefore come out
//! in their original order, each before the first construct that followed it,
//! and none can be lost. Newlines are written lazily (`pending`), so that a
//! comment that ended a line of code can still join that line.
//!
//! Layout decisions (inline or one entry per line) depend only on the tree,
//! on which constructs hold comments, and on the column, which is what makes
//! `format(format(x)) == format(x)`.

mod expr;
mod items;
#[cfg(test)]
mod tests;

use crate::ast::{Comment, CommentKind, File};
use crate::diagnostic::Diagnostic;
use crate::source::FileId;
use crate::span::Span;

/// The column a line should not pass.
const WIDTH: usize = 100;
/// Spaces per nesting level.
const INDENT: usize = 2;

/// Formats a file. Refuses (with the syntax diagnostics) when the file does
/// not parse, so that broken text is never rewritten.
pub fn format(text: &str) -> Result<String, Vec<Diagnostic>> {
    let (file, diagnostics) = crate::parser::parse(text, FileId(0));
    let syntax: Vec<Diagnostic> = diagnostics.into_iter().filter(|d| d.code == "E0001").collect();
    if !syntax.is_empty() {
        return Err(syntax);
    }
    Ok(print_file(&file, text))
}

/// Prints a syntax tree in the canonical layout. `source` is the text the tree
/// was parsed from: it tells where comments and blank lines were. A tree built
/// by hand (no comments, dummy spans) can be printed with an empty `source`.
pub fn print_file(file: &File, source: &str) -> String {
    let mut comments = file.comments.clone();
    comments.sort_by_key(|c| c.span.start);
    let mut printer = Printer::new(source, &comments);
    printer.file(file);
    printer.finish()
}

/// The output being built, where the printer is in the comments, and how the
/// next piece of text must be separated from what is already written.
#[derive(Clone)]
struct Printer<'a> {
    src: &'a str,
    /// All comments, sorted by position.
    comments: &'a [Comment],
    /// The first comment not printed yet.
    next: usize,
    out: String,
    /// The indentation of new lines, in spaces.
    indent: usize,
    /// Newlines to write before the next text: 0, 1, or 2 (a blank line).
    pending: usize,
    /// Whether a blank line of the source may be kept at this point (between
    /// items, between steps, before comments there).
    blank_ok: bool,
}

impl<'a> Printer<'a> {
    fn new(src: &'a str, comments: &'a [Comment]) -> Self {
        Printer { src, comments, next: 0, out: String::new(), indent: 0, pending: 0, blank_ok: false }
    }

    fn finish(mut self) -> String {
        trim_trailing_spaces(&mut self.out);
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out
    }

    // ----- writing -----

    /// Writes text after the pending newlines (a leading space is dropped at
    /// the start of a line).
    fn text(&mut self, s: &str) {
        let fresh_line = self.flush_newlines();
        self.blank_ok = false;
        let s = if fresh_line || self.out.ends_with(' ') { s.trim_start_matches(' ') } else { s };
        self.out.push_str(s);
    }

    /// Writes the pending newlines and the indentation; says whether it did.
    fn flush_newlines(&mut self) -> bool {
        let pending = std::mem::take(&mut self.pending);
        if pending == 0 || self.out.is_empty() {
            return false;
        }
        trim_trailing_spaces(&mut self.out);
        for _ in 0..pending {
            self.out.push('\n');
        }
        self.out.extend(std::iter::repeat_n(' ', self.indent));
        true
    }

    /// Asks for at least `newlines` newlines before the next text, and says
    /// whether a blank line of the source may be kept there.
    fn separate(&mut self, newlines: usize, keep_source_blank: bool) {
        self.pending = self.pending.max(newlines);
        self.blank_ok = keep_source_blank;
    }

    /// The column the next text starts at.
    fn col(&self) -> usize {
        if self.pending > 0 && !self.out.is_empty() {
            return self.indent;
        }
        self.out.rsplit('\n').next().map_or(0, |line| line.chars().count())
    }

    /// Whether text of this width fits on the current line.
    fn fits(&self, width: usize) -> bool {
        self.col() + width <= WIDTH
    }

    // ----- comments -----

    /// Prints the comments that start before `pos` (a node's start, or the
    /// place of a closing delimiter).
    fn at(&mut self, pos: u32) {
        let pos = self.token_start(pos);
        let comments = self.comments;
        while let Some(c) = comments.get(self.next) {
            if c.span.start >= pos {
                break;
            }
            self.next += 1;
            self.comment(c);
        }
    }

    /// Like [`Printer::at`], for an entry of a list where a blank line of the
    /// source is kept (items, steps).
    fn at_entry(&mut self, pos: u32) {
        self.at(pos);
        let pos = self.token_start(pos);
        if self.blank_ok && self.pending > 0 && blank_line_before(self.src, pos) {
            self.pending = 2;
        }
    }

    fn comment(&mut self, c: &Comment) {
        let text = c.text.as_str();
        if self.out.is_empty() {
            self.out.push_str(text);
            self.pending = 1;
            return;
        }
        if ends_code_line(self.src, c.span.start) && !self.ends_in_line_comment() {
            // The comment ended a line of code: it stays at the end of the line.
            if self.pending > 0 {
                trim_trailing_spaces(&mut self.out);
                self.out.push(' ');
                self.out.push_str(text);
            } else {
                if !self.out.ends_with([' ', '(', '[', '\n']) {
                    self.out.push(' ');
                }
                self.out.push_str(text);
                if c.kind == CommentKind::Block {
                    self.out.push(' ');
                } else {
                    self.pending = 1;
                }
            }
            return;
        }
        let mut newlines = self.pending.max(1);
        if self.blank_ok && blank_line_before(self.src, c.span.start) {
            newlines = 2;
        }
        self.pending = newlines;
        self.flush_newlines();
        self.out.push_str(text);
        self.pending = 1;
    }

    /// Whether the current output line ends with a `//` comment (nothing
    /// more may join that line).
    fn ends_in_line_comment(&self) -> bool {
        let line = self.out.rsplit('\n').next().unwrap_or("");
        let printed = &self.comments[..self.next.saturating_sub(1).min(self.comments.len())];
        printed.last().is_some_and(|c| c.kind != CommentKind::Block && line.ends_with(c.text.as_str()))
    }

    /// `pos` moved past whitespace and comments (an item's span may begin
    /// with its doc comment, which must be printed before the item).
    fn token_start(&self, pos: u32) -> u32 {
        let bytes = self.src.as_bytes();
        let mut i = pos as usize;
        loop {
            while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
                i += 1;
            }
            let k = self.comments.partition_point(|c| (c.span.start as usize) < i);
            match self.comments.get(k) {
                Some(c) if c.span.start as usize == i && c.span.end as usize > i => i = c.span.end as usize,
                _ => break,
            }
        }
        u32::try_from(i).unwrap_or(u32::MAX)
    }

    /// Whether a comment not yet printed starts inside `span`.
    fn has_comment(&self, span: Span) -> bool {
        let i = self.comments.partition_point(|c| c.span.start < span.start);
        self.comments.get(i).is_some_and(|c| c.span.start < span.end)
    }
}

fn trim_trailing_spaces(out: &mut String) {
    let trimmed = out.trim_end_matches([' ', '\t']).len();
    out.truncate(trimmed);
}

/// Whether the source has a blank line right before `pos` (only whitespace
/// between `pos` and the previous line with text).
fn blank_line_before(src: &str, pos: u32) -> bool {
    let before = src.get(..pos as usize).unwrap_or("");
    let gap = &before[before.trim_end().len()..];
    gap.matches('\n').count() >= 2
}

/// Whether the text before `pos` on its source line holds code (then a
/// comment at `pos` ended a line of code).
fn ends_code_line(src: &str, pos: u32) -> bool {
    let before = src.get(..pos as usize).unwrap_or("");
    let line = before.rsplit('\n').next().unwrap_or("");
    !line.trim().is_empty()
}
