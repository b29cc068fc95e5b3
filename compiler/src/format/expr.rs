//! Expressions, types and strings: their one-line forms, and how they break
//! over lines when they do not fit or hold comments.

use crate::ast::{Arg, BinaryOp, DurationUnit, Expr, ExprKind, Ident, Param, StrLit, StrPart, TypeExpr, TypeExprKind, UnaryOp};

use super::{INDENT, Printer};

/// Precedence levels (HELPERS.md, decision 4), lowest first.
const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const COMPARE: u8 = 4;
const COALESCE: u8 = 5;
const PREFIX: u8 = 6;
const POSTFIX: u8 = 7;
const PRIMARY: u8 = 8;

/// How tightly an expression binds: it needs parentheses where an operand
/// of at least `min` is required and `precedence(e) < min`.
fn precedence(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Binary(op, _, _) => match op {
            BinaryOp::Or => OR,
            BinaryOp::And => AND,
            BinaryOp::Coalesce => COALESCE,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => COMPARE,
        },
        ExprKind::Unary(UnaryOp::Not, _) => NOT,
        ExprKind::Unary(UnaryOp::Neg, _) => PREFIX,
        ExprKind::Int(n) if *n < 0 => PREFIX,
        ExprKind::Float(f) if f.is_sign_negative() => PREFIX,
        // `llm r(p).x` would be ambiguous to a reader: parenthesize as a base.
        ExprKind::Llm { .. } => PREFIX,
        // `for` runs to the end of its call: parenthesize it as any operand.
        ExprKind::For { .. } => 0,
        ExprKind::Field(..) | ExprKind::Index(..) | ExprKind::Call { .. } => POSTFIX,
        _ => PRIMARY,
    }
}

/// The minimum precedences of the left and right operands of `op`.
fn operand_precedences(op: BinaryOp) -> (u8, u8) {
    match op {
        BinaryOp::Or => (OR, AND),
        BinaryOp::And => (AND, NOT),
        // Comparisons do not chain: `a < b < c` is a syntax error.
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => (COALESCE, COALESCE),
        BinaryOp::Coalesce => (COALESCE, PREFIX),
    }
}

/// The width of text in columns (characters).
pub(super) fn width(s: &str) -> usize {
    s.chars().count()
}

/// What the one-line form does with a triple-quoted string.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Triple {
    /// It has no one-line form.
    Refuse,
    /// Written as a plain string (inside an interpolation, the only choice).
    AsPlain,
}

/// The one-line form of an expression (parenthesized when its precedence
/// is below `min`), or `None` when it has none (a triple-quoted string).
pub(super) fn flat_expr(e: &Expr, min: u8, src: &str) -> Option<String> {
    flat(e, min, src, Triple::Refuse)
}

fn flat(e: &Expr, min: u8, src: &str, triple: Triple) -> Option<String> {
    let s = flat_bare(e, src, triple)?;
    Some(if precedence(e) < min { format!("({s})") } else { s })
}

fn flat_bare(e: &Expr, src: &str, triple: Triple) -> Option<String> {
    let list = |items: &mut dyn Iterator<Item = Option<String>>| -> Option<String> {
        Some(items.collect::<Option<Vec<String>>>()?.join(", "))
    };
    Some(match &e.kind {
        ExprKind::Int(n) => n.to_string(),
        ExprKind::Float(f) => float_text(*f),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Null => "null".to_string(),
        ExprKind::Str(s) if s.triple && triple == Triple::Refuse => return None,
        ExprKind::Str(s) => quote_parts(&s.parts, src),
        ExprKind::Duration(d) => format!("{}{}", d.value, unit(d.unit)),
        ExprKind::Money(m) => format!("${}", m.text),
        ExprKind::Price(m) => format!("${}/M", m.text),
        ExprKind::Name(i) => i.name.clone(),
        ExprKind::Field(base, field) => format!("{}.{}", flat(base, POSTFIX, src, triple)?, field.name),
        ExprKind::Index(base, index) => {
            format!("{}[{}]", flat(base, POSTFIX, src, triple)?, flat(index, 0, src, triple)?)
        }
        ExprKind::List(items) => format!("[{}]", list(&mut items.iter().map(|i| flat(i, 0, src, triple)))?),
        ExprKind::Record(entries) if entries.is_empty() => "{}".to_string(),
        ExprKind::Record(entries) => {
            let fields = list(&mut entries.iter().map(|(k, v)| Some(format!("{}: {}", k.name, flat(v, 0, src, triple)?))))?;
            format!("{{ {fields} }}")
        }
        ExprKind::Unary(UnaryOp::Not, x) => format!("not {}", flat(x, NOT, src, triple)?),
        ExprKind::Unary(UnaryOp::Neg, x) => format!("-{}", flat(x, POSTFIX, src, triple)?),
        ExprKind::Binary(op, a, b) => {
            let (l, r) = operand_precedences(*op);
            format!("{} {} {}", flat(a, l, src, triple)?, op.as_str(), flat(b, r, src, triple)?)
        }
        ExprKind::Call { callee, args } => {
            format!("{}({})", path(callee), list(&mut args.iter().map(|a| flat_arg(a, src, triple)))?)
        }
        ExprKind::Llm { role, prompt, agent } => format!("{} {}({})", llm_word(*agent), role.name, flat(prompt, 0, src, triple)?),
        ExprKind::For { var, iter, body } => {
            format!("for {} in {} => {}", var.name, flat(iter, 0, src, triple)?, flat(body, 0, src, triple)?)
        }
        // A block of steps is never on one line.
        ExprKind::Block { .. } => return None,
        ExprKind::Error => src.get(e.span.range()).unwrap_or("").to_string(),
    })
}

/// `llm`, or `agent` for a bounded agent.
fn llm_word(agent: bool) -> &'static str {
    if agent { "agent" } else { "llm" }
}

fn flat_arg(a: &Arg, src: &str, triple: Triple) -> Option<String> {
    let value = flat(&a.value, 0, src, triple)?;
    Some(match &a.name {
        Some(name) => format!("{}: {value}", name.name),
        None => value,
    })
}

/// `name: T = default` on one line.
pub(super) fn flat_param(p: &Param, src: &str) -> Option<String> {
    let mut s = format!("{}: {}", p.name.name, flat_type(&p.ty, src));
    if let Some(default) = &p.default {
        s.push_str(" = ");
        s.push_str(&flat_expr(default, 0, src)?);
    }
    Some(s)
}

/// A type on one line.
pub(super) fn flat_type(t: &TypeExpr, src: &str) -> String {
    match &t.kind {
        TypeExprKind::Named(name) => name.name.clone(),
        TypeExprKind::List(inner) => format!("List<{}>", flat_type(inner, src)),
        TypeExprKind::Optional(inner) => format!("{}?", flat_type(inner, src)),
        TypeExprKind::Record(fields) if fields.is_empty() => "{}".to_string(),
        TypeExprKind::Record(fields) => {
            let fields: Vec<String> = fields.iter().map(|(k, t)| format!("{}: {}", k.name, flat_type(t, src))).collect();
            format!("{{ {} }}", fields.join(", "))
        }
        TypeExprKind::Error => src.get(t.span.range()).unwrap_or("").to_string(),
    }
}

fn path(segments: &[Ident]) -> String {
    segments.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(".")
}

fn unit(u: DurationUnit) -> &'static str {
    match u {
        DurationUnit::Ms => "ms",
        DurationUnit::S => "s",
        DurationUnit::M => "m",
        DurationUnit::H => "h",
        DurationUnit::D => "d",
    }
}

/// A float written so that it reads back as the same value, always with a
/// `.` so that it stays a float.
pub(super) fn float_text(f: f64) -> String {
    let plain = format!("{f}");
    let s = if plain.len() <= 21 { plain } else { format!("{f:e}") };
    match s.find('e') {
        Some(i) if !s[..i].contains('.') => format!("{}.0{}", &s[..i], &s[i..]),
        Some(_) => s,
        None if s.contains('.') || !f.is_finite() => s,
        None => format!("{s}.0"),
    }
}

/// A plain string literal holding `text`.
pub(super) fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    escape_plain(&mut out, text);
    out.push('"');
    out
}

fn escape_plain(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '{' => out.push_str("\\{"),
            '}' => out.push_str("\\}"),
            c => out.push(c),
        }
    }
}

fn quote_parts(parts: &[StrPart], src: &str) -> String {
    let mut out = String::from("\"");
    for part in parts {
        match part {
            StrPart::Text(t) => escape_plain(&mut out, t),
            StrPart::Interp(e) => interpolation(&mut out, e, src),
        }
    }
    out.push('"');
    out
}

fn interpolation(out: &mut String, e: &Expr, src: &str) {
    out.push('{');
    out.push_str(&flat(e, 0, src, Triple::AsPlain).unwrap_or_default());
    out.push('}');
}

/// The body of a triple-quoted string as it is written between the quotes,
/// before indentation: newlines stay newlines, and a `"` is escaped only
/// where it is followed by another (so that `"""` never appears).
fn triple_body(parts: &[StrPart], src: &str) -> String {
    let mut out = String::new();
    let mut text = String::new();
    let flush = |out: &mut String, text: &mut String| {
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\\' => out.push_str("\\\\"),
                '{' => out.push_str("\\{"),
                '}' => out.push_str("\\}"),
                '"' if chars.peek() == Some(&'"') => out.push_str("\\\""),
                c => out.push(c),
            }
        }
        text.clear();
    };
    for part in parts {
        match part {
            StrPart::Text(t) => text.push_str(t),
            StrPart::Interp(e) => {
                flush(&mut out, &mut text);
                interpolation(&mut out, e, src);
            }
        }
    }
    flush(&mut out, &mut text);
    out
}

/// Whether trimming the indentation of `body` written one level in gives
/// `body` back: some line with text must start at the margin (or there is
/// no text at all).
fn triple_round_trips(body: &str) -> bool {
    let mut lines = body.split('\n');
    lines.clone().all(str::is_empty)
        || lines.any(|l| !l.trim_start_matches([' ', '\t']).is_empty() && !l.starts_with([' ', '\t']))
}

/// The operands of a left-associated chain of `op` (`a and b and c`).
fn chain<'e>(e: &'e Expr, op: BinaryOp, out: &mut Vec<&'e Expr>) {
    match &e.kind {
        ExprKind::Binary(o, a, b) if *o == op => {
            chain(a, op, out);
            out.push(b);
        }
        _ => out.push(e),
    }
}

impl Printer<'_> {
    /// Prints an expression that must bind at least as tightly as `min`,
    /// followed on its line by `trail` more columns: on one line when it fits
    /// and holds no comment, else broken over lines.
    pub(super) fn expr(&mut self, e: &Expr, min: u8, trail: usize) {
        self.at(e.span.start);
        if !self.has_comment(e.span)
            && let Some(s) = flat_expr(e, min, self.src)
            && self.fits(width(&s) + trail)
        {
            self.text(&s);
            return;
        }
        if precedence(e) < min {
            self.text("(");
            self.expr_broken(e, trail + 1);
            self.text(")");
        } else {
            self.expr_broken(e, trail);
        }
    }

    fn expr_broken(&mut self, e: &Expr, trail: usize) {
        let close = e.span.end.saturating_sub(1);
        match &e.kind {
            ExprKind::Call { callee, args } => {
                self.text(&path(callee));
                self.text("(");
                self.indent += INDENT;
                for arg in args {
                    self.separate(1, false);
                    self.at(arg.span.start);
                    if let Some(name) = &arg.name {
                        self.text(&format!("{}: ", name.name));
                    }
                    self.expr(&arg.value, 0, 1);
                    self.text(",");
                }
                self.close(")", close);
            }
            ExprKind::List(items) => {
                self.text("[");
                self.indent += INDENT;
                for item in items {
                    self.separate(1, false);
                    self.expr(item, 0, 1);
                    self.text(",");
                }
                self.close("]", close);
            }
            ExprKind::Record(entries) => {
                self.text("{");
                self.indent += INDENT;
                for (key, value) in entries {
                    self.separate(1, false);
                    self.at(key.span.start);
                    self.text(&format!("{}: ", key.name));
                    self.expr(value, 0, 0);
                }
                self.close("}", close);
            }
            ExprKind::Field(base, field) => {
                self.expr(base, POSTFIX, 0);
                self.text(&format!(".{}", field.name));
            }
            ExprKind::Index(base, index) => {
                self.expr(base, POSTFIX, 0);
                self.text("[");
                self.expr(index, 0, 1 + trail);
                self.text("]");
            }
            ExprKind::Unary(UnaryOp::Not, x) => {
                self.text("not ");
                self.expr(x, NOT, trail);
            }
            ExprKind::Unary(UnaryOp::Neg, x) => {
                self.text("-");
                self.expr(x, POSTFIX, trail);
            }
            ExprKind::Binary(op @ (BinaryOp::And | BinaryOp::Or), _, _) if !self.has_comment(e.span) => {
                // A long chain of `and`s (or `or`s): one operand a line, the
                // operator first, one level in. (With a comment inside, the
                // operands stay where the comments put them.)
                let mut operands = Vec::new();
                chain(e, *op, &mut operands);
                let (l, r) = operand_precedences(*op);
                let last = operands.len().saturating_sub(1);
                for (k, x) in operands.into_iter().enumerate() {
                    let t = if k == last { trail } else { 0 };
                    if k == 0 {
                        self.expr(x, l, t);
                        self.indent += INDENT;
                    } else {
                        self.separate(1, false);
                        self.text(&format!("{} ", op.as_str()));
                        self.expr(x, r, t);
                    }
                }
                self.indent = self.indent.saturating_sub(INDENT);
            }
            ExprKind::Binary(op, a, b) => {
                let (l, r) = operand_precedences(*op);
                self.expr(a, l, 0);
                self.text(&format!(" {} ", op.as_str()));
                self.expr(b, r, trail);
            }
            ExprKind::Llm { role, prompt, agent } => {
                self.text(&format!("{} {}(", llm_word(*agent), role.name));
                self.expr(prompt, 0, 1 + trail);
                self.text(")");
            }
            ExprKind::For { var, iter, body } => {
                self.text(&format!("for {} in ", var.name));
                self.expr(iter, 0, 0);
                self.text(" => ");
                self.expr(body, 0, trail);
            }
            ExprKind::Str(s) if s.triple => self.triple(s),
            ExprKind::Block { steps, ret } => self.block(steps, ret, e.span),
            _ => {
                let s = flat(e, 0, self.src, Triple::AsPlain).unwrap_or_default();
                self.text(&s);
            }
        }
    }

    /// A triple-quoted string: `"""`, the lines one level in, and the closing
    /// `"""` on its own line (trimIndent gives the text back on parsing).
    fn triple(&mut self, s: &StrLit) {
        let body = triple_body(&s.parts, self.src);
        if !triple_round_trips(&body) {
            let plain = quote_parts(&s.parts, self.src);
            self.text(&plain);
            return;
        }
        let pad = " ".repeat(self.indent + INDENT);
        self.text("\"\"\"");
        for line in body.split('\n') {
            self.out.push('\n');
            if !line.is_empty() {
                self.out.push_str(&pad);
                self.out.push_str(line);
            }
        }
        self.out.push('\n');
        self.out.push_str(&pad);
        self.out.push_str("\"\"\"");
    }

    /// Prints a type followed on its line by `trail` more columns; a record
    /// type that does not fit gets one field per line.
    pub(super) fn ty(&mut self, t: &TypeExpr, trail: usize) {
        self.at(t.span.start);
        let flat = flat_type(t, self.src);
        if let TypeExprKind::Record(fields) = &t.kind
            && (self.has_comment(t.span) || !self.fits(width(&flat) + trail))
        {
            self.text("{");
            self.indent += INDENT;
            for (name, field_ty) in fields {
                self.separate(1, false);
                self.at(name.span.start);
                self.text(&format!("{}: ", name.name));
                self.ty(field_ty, 0);
            }
            self.close("}", t.span.end.saturating_sub(1));
            return;
        }
        self.text(&flat);
    }
}
