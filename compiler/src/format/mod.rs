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
#[cfg(test)]
mod tests;

use crate::ast::{
    Attr, Attrs, Comment, CommentKind, Expr, File, Item, ItemKind, Param, Rule, RuleKind, Scripted, Step, TestDecl, TestStmt, TestStmtKind, Use,
    Workflow,
};
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

    // ----- items -----

    fn file(&mut self, file: &File) {
        self.blank_ok = true;
        let mut prev: Option<&ItemKind> = None;
        for item in &file.items {
            if let Some(prev) = prev {
                let newlines = if grouped(prev, &item.kind) { 1 } else { 2 };
                self.separate(newlines, true);
            }
            self.at_entry(item.span.start);
            self.item(item);
            prev = Some(&item.kind);
        }
        self.separate(1, true);
        self.at(u32::MAX);
    }

    fn item(&mut self, item: &Item) {
        let close = item.span.end.saturating_sub(1);
        match &item.kind {
            ItemKind::Use(u) => {
                self.text("use");
                match u {
                    Use::Std(path) => {
                        self.text(" std");
                        for segment in path {
                            self.text(".");
                            self.word_at(segment.span.start, &segment.name);
                        }
                    }
                    Use::Path(p, span) => self.word_at(span.start, &format!(" {}", expr::quote(p))),
                }
            }
            ItemKind::Type(t) => {
                self.text("type");
                self.word_at(t.name.span.start, &format!(" {} = ", t.name.name));
                self.ty(&t.ty, 0);
            }
            ItemKind::Enum(e) => {
                self.text("enum");
                self.word_at(e.name.span.start, &format!(" {} ", e.name.name));
                let body = Span { start: e.name.span.end, end: item.span.end };
                let names: Vec<&str> = e.variants.iter().map(|v| v.name.as_str()).collect();
                let flat = if names.is_empty() { "{}".to_string() } else { format!("{{ {} }}", names.join(", ")) };
                if !self.has_comment(body) && self.fits(expr::width(&flat)) {
                    self.text(&flat);
                } else {
                    self.text("{");
                    self.indent += INDENT;
                    for v in &e.variants {
                        self.separate(1, false);
                        self.at(v.span.start);
                        self.text(&v.name);
                    }
                    self.close("}", close);
                }
            }
            ItemKind::Model(m) => {
                self.text("model");
                self.word_at(m.name.span.start, &format!(" {} = ", m.name.name));
                self.word_at(m.provider.span.start, &format!("{}(", m.provider.name));
                self.word_at(m.model_id_span.start, &expr::quote(&m.model_id));
                self.text(")");
                if let Some(attrs) = &m.attrs {
                    self.attrs_block(attrs);
                }
            }
            ItemKind::Role(r) => {
                self.text("role");
                self.word_at(r.name.span.start, &format!(" {} = ", r.name.name));
                // The list ends where the attribute block starts, if any.
                let end = r.attrs.as_ref().map_or(item.span.end, |a| a.span.start);
                let body = Span { start: r.name.span.end, end };
                let names: Vec<&str> = r.models.iter().map(|v| v.name.as_str()).collect();
                let flat = format!("[{}]", names.join(", "));
                if !self.has_comment(body) && self.fits(expr::width(&flat)) {
                    self.text(&flat);
                } else {
                    self.text("[");
                    self.indent += INDENT;
                    for m in &r.models {
                        self.separate(1, false);
                        self.at(m.span.start);
                        self.text(&m.name);
                        self.text(",");
                    }
                    let bracket = match &r.attrs {
                        Some(a) => self.closing_delimiter(r.models.last().map_or(r.name.span.end, |m| m.span.end), b']').unwrap_or(a.span.start),
                        None => close,
                    };
                    self.close("]", bracket);
                }
                if let Some(attrs) = &r.attrs {
                    self.attrs_block(attrs);
                }
            }
            ItemKind::Tool(t) => {
                let names: Vec<&str> = t.path.iter().map(|i| i.name.as_str()).collect();
                self.text("tool");
                let start = t.path.first().map_or(0, |i| i.span.start);
                self.word_at(start, &format!(" {}", names.join(".")));
                let suffix = t.ret.as_ref().map_or(0, |r| 4 + expr::width(&expr::flat_type(r, self.src)));
                self.params(&t.params, t.path.last().map_or(0, |i| i.span.end), suffix);
                if let Some(ret) = &t.ret {
                    self.text(" -> ");
                    self.ty(ret, 0);
                }
                if let Some(attrs) = &t.attrs {
                    self.attrs_block(attrs);
                }
            }
            ItemKind::Policy(p) => {
                self.text("policy");
                self.word_at(p.name.span.start, &format!(" {}", p.name.name));
                let body = Span { start: p.name.span.end, end: item.span.end };
                if p.rules.is_empty() && !self.has_comment(body) {
                    self.text(" {}");
                    return;
                }
                self.text(" {");
                self.indent += INDENT;
                for rule in &p.rules {
                    self.separate(1, false);
                    self.at(rule.span.start);
                    self.rule(rule);
                }
                self.close("}", close);
            }
            ItemKind::Workflow(w) => self.workflow(w, item.span),
            ItemKind::Test(t) => self.test(t, item.span),
            ItemKind::Error => {
                let raw = self.src.get(item.span.range()).unwrap_or("").to_string();
                self.text(&raw);
            }
        }
    }

    /// The comments before `pos`, then `s`.
    fn word_at(&mut self, pos: u32, s: &str) {
        self.at(pos);
        self.text(s);
    }

    /// Ends an indented block: back one level, the comments before the
    /// closing delimiter, then the delimiter on its own line.
    fn close(&mut self, delimiter: &str, pos: u32) {
        self.separate(1, false);
        // The comments before the delimiter belong to the block's last line.
        self.at(pos);
        self.indent = self.indent.saturating_sub(INDENT);
        self.text(delimiter);
    }

    fn rule(&mut self, rule: &Rule) {
        match &rule.kind {
            RuleKind::Require(what) => self.text(&format!("require {} when ", what.name)),
            RuleKind::Deny => self.text("deny when "),
        }
        self.expr(&rule.cond, 0, 0);
    }

    /// A parameter list: on one line when it fits (with `suffix` columns
    /// after it), else one parameter per line with a trailing comma.
    fn params(&mut self, params: &[Param], after_name: u32, suffix: usize) {
        let flat: Option<Vec<String>> = params.iter().map(|p| expr::flat_param(p, self.src)).collect();
        // The comments that count are those between the parentheses.
        let open = self.token_start(after_name);
        let last_end = params.last().map_or(open.saturating_add(1), |p| p.span.end);
        let close = self.closing_delimiter(last_end, b')');
        let region = Span { start: after_name, end: close.map_or(last_end, |c| c + 1) };
        if let Some(flat) = flat {
            let flat = format!("({})", flat.join(", "));
            if !self.has_comment(region) && self.fits(expr::width(&flat) + suffix + 2) {
                self.text(&flat);
                return;
            }
        }
        self.text("(");
        self.indent += INDENT;
        for p in params {
            self.separate(1, false);
            self.at(p.span.start);
            self.param(p);
            self.text(",");
        }
        self.close(")", close.unwrap_or(last_end));
    }

    /// Where the delimiter `delimiter` that closes a list is, when the list's
    /// last entry ends at `pos` (a trailing comma and comments may come
    /// between).
    fn closing_delimiter(&self, pos: u32, delimiter: u8) -> Option<u32> {
        let mut at = self.token_start(pos);
        if self.src.as_bytes().get(at as usize) == Some(&b',') {
            at = self.token_start(at + 1);
        }
        (self.src.as_bytes().get(at as usize) == Some(&delimiter)).then_some(at)
    }

    fn param(&mut self, p: &Param) {
        self.text(&format!("{}: ", p.name.name));
        self.ty(&p.ty, 1);
        if let Some(default) = &p.default {
            self.text(" = ");
            self.expr(default, 0, 1);
        }
    }

    /// ` { a: 1, b: 2 }` when short, else one entry per line.
    fn attrs_block(&mut self, attrs: &Attrs) {
        self.at(attrs.span.start);
        let has_comment = self.has_comment(attrs.span);
        if attrs.entries.is_empty() && !has_comment {
            self.text(" {}");
            return;
        }
        if attrs.entries.len() <= 3 && !has_comment {
            let flat: Option<Vec<String>> = attrs
                .entries
                .iter()
                .map(|a| expr::flat_expr(&a.value, 0, self.src).map(|v| format!("{}: {v}", a.key.name)))
                .collect();
            if let Some(flat) = flat {
                let line = format!(" {{ {} }}", flat.join(", "));
                if self.fits(expr::width(&line)) {
                    self.text(&line);
                    return;
                }
            }
        }
        self.text(" {");
        self.indent += INDENT;
        for attr in &attrs.entries {
            self.separate(1, false);
            self.at(attr.span.start);
            self.attr(attr);
        }
        self.close("}", attrs.span.end.saturating_sub(1));
    }

    fn attr(&mut self, attr: &Attr) {
        self.text(&format!("{}: ", attr.key.name));
        self.expr(&attr.value, 0, 0);
    }

    fn workflow(&mut self, w: &Workflow, span: Span) {
        self.text("workflow");
        self.word_at(w.name.span.start, &format!(" {}", w.name.name));
        let suffix = w.ret.as_ref().map_or(0, |r| 4 + expr::width(&expr::flat_type(r, self.src)));
        self.params(&w.params, w.name.span.end, suffix);
        if let Some(ret) = &w.ret {
            self.text(" -> ");
            self.ty(ret, 0);
        }
        let header_end = match &w.ret {
            Some(ret) => ret.span.end,
            None => {
                let open = self.token_start(w.name.span.end).saturating_add(1);
                let last = w.params.last().map_or(open, |p| p.span.end);
                self.closing_delimiter(last, b')').map_or(last, |c| c + 1)
            }
        };
        let body = Span { start: header_end, end: span.end };
        if w.attrs.is_empty() && w.steps.is_empty() && w.ret_expr.is_none() && !self.has_comment(body) {
            self.text(" {}");
            return;
        }
        self.text(" {");
        self.indent += INDENT;
        for attr in &w.attrs {
            self.separate(1, false);
            self.at(attr.span.start);
            self.attr(attr);
        }
        let mut prev_multiline = false;
        for (i, step) in w.steps.iter().enumerate() {
            let multiline = self.step_is_multiline(step);
            let newlines = match i {
                0 if w.attrs.is_empty() => 1,
                0 => 2,
                _ if multiline || prev_multiline => 2,
                _ => 1,
            };
            self.separate(newlines, i > 0 || !w.attrs.is_empty());
            self.at_entry(step.span.start);
            self.step(step);
            prev_multiline = multiline;
        }
        if let Some((value, ret_span)) = &w.ret_expr {
            let after_something = !w.attrs.is_empty() || !w.steps.is_empty();
            self.separate(if after_something { 2 } else { 1 }, after_something);
            self.at_entry(ret_span.start);
            self.text("return ");
            self.expr(value, 0, 0);
        }
        self.separate(1, true);
        self.at(span.end.saturating_sub(1));
        self.indent = self.indent.saturating_sub(INDENT);
        self.text("}");
    }

    /// `test "NAME" {` then one statement per line.
    fn test(&mut self, t: &TestDecl, span: Span) {
        self.text("test");
        self.word_at(t.name_span.start, &format!(" {}", expr::quote(&t.name)));
        let body = Span { start: t.name_span.end, end: span.end };
        if t.stmts.is_empty() && !self.has_comment(body) {
            self.text(" {}");
            return;
        }
        self.text(" {");
        self.indent += INDENT;
        for (i, stmt) in t.stmts.iter().enumerate() {
            self.separate(1, i > 0);
            self.at_entry(stmt.span.start);
            self.test_stmt(stmt);
        }
        self.close("}", span.end.saturating_sub(1));
    }

    fn test_stmt(&mut self, stmt: &TestStmt) {
        match &stmt.kind {
            TestStmtKind::GivenLlm { role, outcome, value } => {
                let verb = match outcome {
                    Scripted::Fails => "fails",
                    Scripted::Returns => "replies",
                    Scripted::Calls => "calls",
                };
                self.text(&format!("given llm {} {verb} ", role.name));
                self.expr(value, 0, 0);
            }
            TestStmtKind::GivenTool { tool, outcome, value } => {
                let verb = if *outcome == Scripted::Fails { "fails" } else { "returns" };
                let names: Vec<&str> = tool.iter().map(|i| i.name.as_str()).collect();
                self.text(&format!("given tool {} {verb} ", names.join(".")));
                self.expr(value, 0, 0);
            }
            TestStmtKind::Answer { approve, step } => {
                self.text(&format!("{} {}", if *approve { "approve" } else { "deny" }, step.name));
            }
            TestStmtKind::Run(call) => {
                self.text("run ");
                self.expr(call, 0, 0);
            }
            TestStmtKind::Expect { subject, op, value } => {
                self.text(&format!("expect {} ", subject.name));
                if let Some(op) = op {
                    self.text(&format!("{} ", op.as_str()));
                }
                self.expr(value, 0, 0);
            }
        }
    }

    fn step(&mut self, step: &Step) {
        self.text(&format!("step {}", step.name.name));
        if let Some(ty) = &step.ty {
            self.text(": ");
            self.ty(ty, 2);
        }
        self.text(" = ");
        self.expr(&step.call, 0, if step.attrs.is_some() { 2 } else { 0 });
        if let Some(attrs) = &step.attrs {
            self.attrs_block(attrs);
        }
    }

    /// A fan-out's block: `{`, its steps one level in (set apart as in a
    /// workflow body), a blank line, `return …`, and `}` on its own line.
    pub(super) fn block(&mut self, steps: &[Step], ret: &Expr, span: Span) {
        self.text("{");
        self.indent += INDENT;
        let mut prev_multiline = false;
        for (i, step) in steps.iter().enumerate() {
            let multiline = self.step_is_multiline(step);
            let newlines = if i > 0 && (multiline || prev_multiline) { 2 } else { 1 };
            self.separate(newlines, i > 0);
            self.at_entry(step.span.start);
            self.step(step);
            prev_multiline = multiline;
        }
        self.separate(if steps.is_empty() { 1 } else { 2 }, !steps.is_empty());
        self.at_entry(ret.span.start);
        self.text("return ");
        self.expr(ret, 0, 0);
        self.close("}", span.end.saturating_sub(1));
    }

    /// Whether a step prints on more than one line (steps that do are set
    /// apart by blank lines). Prints it on the side to find out.
    fn step_is_multiline(&self, step: &Step) -> bool {
        let mut side = self.clone();
        side.out = " ".repeat(self.indent);
        side.pending = 0;
        side.blank_ok = false;
        let start = self.token_start(step.span.start);
        side.next = self.comments.partition_point(|c| c.span.start < start);
        side.step(step);
        side.out.contains('\n') || side.pending > 0
    }
}

/// Whether two consecutive items of these kinds stay together without a
/// blank line (unless the source had one).
fn grouped(a: &ItemKind, b: &ItemKind) -> bool {
    matches!(
        (a, b),
        (ItemKind::Use(_), ItemKind::Use(_))
            | (ItemKind::Model(_), ItemKind::Model(_))
            | (ItemKind::Role(_), ItemKind::Role(_))
            | (ItemKind::Type(_) | ItemKind::Enum(_), ItemKind::Type(_) | ItemKind::Enum(_))
    )
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
