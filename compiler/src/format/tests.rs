//! Printer tests on trees built by hand (the parse-based tests live in
//! `compiler/tests/format.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::expr::float_text;
use super::print_file;
use crate::ast::*;
use crate::span::Span;

fn id(name: &str) -> Ident {
    Ident { name: name.to_string(), span: Span::default() }
}

fn e(kind: ExprKind) -> Expr {
    Expr { kind, span: Span::default() }
}

fn name(n: &str) -> Expr {
    e(ExprKind::Name(id(n)))
}

fn text(s: &str) -> Expr {
    e(ExprKind::Str(StrLit { parts: vec![StrPart::Text(s.to_string())], triple: false }))
}

fn bin(op: BinaryOp, a: Expr, b: Expr) -> Expr {
    e(ExprKind::Binary(op, Box::new(a), Box::new(b)))
}

fn call(callee: &str, args: Vec<(Option<&str>, Expr)>) -> Expr {
    e(ExprKind::Call {
        callee: callee.split('.').map(id).collect(),
        args: args.into_iter().map(|(n, value)| Arg { name: n.map(id), value, span: Span::default() }).collect(),
    })
}

fn named(t: &str) -> TypeExpr {
    TypeExpr { kind: TypeExprKind::Named(id(t)), span: Span::default() }
}

fn item(kind: ItemKind) -> Item {
    Item { kind, doc: None, span: Span::default() }
}

fn attrs(entries: Vec<(&str, Expr)>) -> Attrs {
    Attrs {
        entries: entries.into_iter().map(|(k, value)| Attr { key: id(k), value, span: Span::default() }).collect(),
        span: Span::default(),
    }
}

fn step(n: &str, call: Expr, a: Option<Attrs>) -> Step {
    Step { name: id(n), ty: None, call, attrs: a, span: Span::default() }
}

fn workflow(steps: Vec<Step>, ret: Option<Expr>) -> Item {
    item(ItemKind::Workflow(Workflow {
        name: id("w"),
        params: vec![Param { name: id("x"), ty: named("String"), default: Some(text("a")), span: Span::default() }],
        ret: Some(named("String")),
        attrs: vec![Attr { key: id("budget"), value: e(ExprKind::Money(Money { micros: 500_000, text: "0.50".into() })), span: Span::default() }],
        steps,
        ret_expr: ret.map(|r| (r, Span::default())),
    }))
}

fn print(items: Vec<Item>) -> String {
    print_file(&File { items, comments: vec![] }, "")
}

fn print_expr(x: Expr) -> String {
    let w = workflow(vec![], Some(x));
    let out = print(vec![w]);
    let line = out.lines().find(|l| l.trim_start().starts_with("return ")).unwrap();
    line.trim_start().trim_start_matches("return ").to_string()
}

#[test]
fn parentheses_follow_precedence() {
    use BinaryOp::*;
    let (a, b, c) = (name("a"), name("b"), name("c"));
    assert_eq!(print_expr(bin(Or, bin(Or, a.clone(), b.clone()), c.clone())), "a or b or c");
    assert_eq!(print_expr(bin(Or, a.clone(), bin(Or, b.clone(), c.clone()))), "a or (b or c)");
    assert_eq!(print_expr(bin(And, bin(Or, a.clone(), b.clone()), c.clone())), "(a or b) and c");
    assert_eq!(print_expr(bin(Or, bin(And, a.clone(), b.clone()), c.clone())), "a and b or c");
    assert_eq!(print_expr(bin(Eq, bin(Lt, a.clone(), b.clone()), c.clone())), "(a < b) == c");
    assert_eq!(print_expr(bin(Coalesce, a.clone(), bin(Coalesce, b.clone(), c.clone()))), "a ?? (b ?? c)");
    assert_eq!(print_expr(bin(Ge, bin(Coalesce, a.clone(), b.clone()), c.clone())), "a ?? b >= c");
    let not_and = e(ExprKind::Unary(UnaryOp::Not, Box::new(bin(And, a.clone(), b.clone()))));
    assert_eq!(print_expr(not_and), "not (a and b)");
    let not_eq = e(ExprKind::Unary(UnaryOp::Not, Box::new(bin(Eq, a.clone(), b.clone()))));
    assert_eq!(print_expr(not_eq), "not a == b");
    let neg_field = e(ExprKind::Unary(UnaryOp::Neg, Box::new(e(ExprKind::Field(Box::new(a.clone()), id("x"))))));
    assert_eq!(print_expr(neg_field), "-a.x");
    let field_of_neg = e(ExprKind::Field(Box::new(e(ExprKind::Unary(UnaryOp::Neg, Box::new(a.clone())))), id("x")));
    assert_eq!(print_expr(field_of_neg), "(-a).x");
    let neg_neg = e(ExprKind::Unary(UnaryOp::Neg, Box::new(e(ExprKind::Unary(UnaryOp::Neg, Box::new(a))))));
    assert_eq!(print_expr(neg_neg), "-(-a)");
}

#[test]
fn strings_are_re_escaped() {
    let s = e(ExprKind::Str(StrLit {
        parts: vec![StrPart::Text("a\"b\\c\n\t{x}".into()), StrPart::Interp(name("y")), StrPart::Text("}".into())],
        triple: false,
    }));
    assert_eq!(print_expr(s), r#""a\"b\\c\n\t\{x\}{y}\}""#);
}

#[test]
fn literals_keep_their_form() {
    assert_eq!(print_expr(e(ExprKind::Price(Money { micros: 2_500_000, text: "2.50".into() }))), "$2.50/M");
    assert_eq!(print_expr(e(ExprKind::Duration(Duration { value: 250, unit: DurationUnit::Ms }))), "250ms");
    assert_eq!(float_text(0.7), "0.7");
    assert_eq!(float_text(1500.0), "1500.0");
    assert_eq!(float_text(1e300), "1.0e300");
    assert_eq!(float_text(1.5e-30), "1.5e-30");
    for f in [0.1, 1.0 / 3.0, 123456789.125, 1e21, 5e-324, f64::MAX] {
        assert_eq!(float_text(f).parse::<f64>().unwrap(), f);
    }
}

#[test]
fn long_calls_break_one_argument_per_line() {
    let long = "x".repeat(60);
    let c = call("email.send", vec![(Some("to"), text(&long)), (Some("body"), text(&long))]);
    let out = print(vec![workflow(vec![step("s", c, Some(attrs(vec![("retry", e(ExprKind::Int(3)))])))], None)]);
    insta::assert_snapshot!(out, @r#"
    workflow w(x: String = "a") -> String {
      budget: $0.50

      step s = email.send(
        to: "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        body: "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
      ) { retry: 3 }
    }
    "#);
}

#[test]
fn triple_quoted_strings_are_reindented() {
    let prompt = e(ExprKind::Str(StrLit {
        parts: vec![StrPart::Text("Summarize:\n  ".into()), StrPart::Interp(name("rows")), StrPart::Text("\n\"\"\"".into())],
        triple: true,
    }));
    let llm = e(ExprKind::Llm { role: id("executor"), prompt: Box::new(prompt), agent: false });
    let short = step("a", call("f.g", vec![]), None);
    let out = print(vec![workflow(vec![short.clone(), short, step("s", llm, None)], Some(name("s")))]);
    insta::assert_snapshot!(out, @r#"
    workflow w(x: String = "a") -> String {
      budget: $0.50

      step a = f.g()
      step a = f.g()

      step s = llm executor("""
        Summarize:
          {rows}
        \"\""
        """)

      return s
    }
    "#);
}

#[test]
fn items_group_by_kind() {
    let model = |n: &str| {
        item(ItemKind::Model(ModelDecl {
            name: id(n),
            provider: id("sim"),
            model_id: "echo".into(),
            model_id_span: Span::default(),
            attrs: Some(attrs(vec![("context", e(ExprKind::Int(8192)))])),
        }))
    };
    let role = item(ItemKind::Role(RoleDecl { name: id("r"), models: vec![id("a"), id("b")], attrs: None }));
    let use_ = |n: &str| item(ItemKind::Use(Use::Std(vec![id(n)])));
    let out = print(vec![use_("sql"), use_("email"), model("a"), model("b"), role]);
    insta::assert_snapshot!(out, @r#"
    use std.sql
    use std.email

    model a = sim("echo") { context: 8192 }
    model b = sim("echo") { context: 8192 }

    role r = [a, b]
    "#);
}
