//! The formatter against real text: snapshots of `tests/ui/fmt/*.aos`
//! (input and output in one snapshot), and on every fixture, example,
//! standard-library module and conformance case that parses, the three
//! promises of `aos_compiler::format`:
//!
//! - idempotent: `format(format(x)) == format(x)`;
//! - comments kept: the same comment texts, in the same order;
//! - meaning kept: `parse(format(x))` equals `parse(x)` once spans are erased.
//!
//! A property test does the same for random well-formed programs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use aos_compiler::ast::File;
use aos_compiler::{FileId, format, parse};

/// A tree as JSON with every span replaced by `null` (a `Span` serializes as
/// `{start, end}`), so that trees parsed from different layouts compare.
fn without_spans(file: &File) -> serde_json::Value {
    fn erase(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                let is_span = map.len() == 2 && map.get("start").is_some_and(|s| s.is_u64()) && map.get("end").is_some_and(|e| e.is_u64());
                if is_span {
                    *v = serde_json::Value::Null;
                } else {
                    map.values_mut().for_each(erase);
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(erase),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(file).unwrap();
    erase(&mut v);
    v
}

fn parse_clean(name: &str, text: &str) -> File {
    let (file, diagnostics) = parse(text, FileId(0));
    let syntax: Vec<_> = diagnostics.iter().filter(|d| d.code == "E0001").map(|d| &d.message).collect();
    assert!(syntax.is_empty(), "{name}: syntax errors {syntax:?} in\n{text}");
    file
}

/// Formats `text` and checks the formatter's promises; returns the output.
fn check_promises(name: &str, text: &str) -> String {
    let before = parse_clean(name, text);
    let out = format(text).unwrap_or_else(|d| panic!("{name}: format refused: {d:?}"));
    let after = parse_clean(&format!("{name} (formatted)"), &out);
    let texts = |f: &File| f.comments.iter().map(|c| c.text.clone()).collect::<Vec<_>>();
    assert_eq!(texts(&before), texts(&after), "{name}: comments changed; input:\n{text}\noutput:\n{out}");
    assert_eq!(without_spans(&before), without_spans(&after), "{name}: the tree changed; output:\n{out}");
    let again = format(&out).unwrap();
    assert_eq!(out, again, "{name}: not idempotent");
    out
}

#[test]
fn fmt_fixtures() {
    insta::glob!("ui/fmt", "*.aos", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let out = check_promises(&stem, &text);
        insta::with_settings!({ snapshot_suffix => stem }, {
            insta::assert_snapshot!(format!("----- INPUT\n{text}----- OUTPUT\n{out}"));
        });
    });
}

/// The repository root (the parent of `compiler/`).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn aos_files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            aos_files_under(&path, found);
        } else if path.extension().is_some_and(|e| e == "aos") {
            found.push(path);
        }
    }
}

#[test]
fn every_aos_file_that_parses_formats_stably() {
    let shared = std::env::var_os("AOS_SHARED").map_or_else(|| repo_root().join("../shared"), PathBuf::from);
    let mut files = Vec::new();
    for dir in [repo_root().join("examples"), repo_root().join("stdlib"), shared.join("conformance"), repo_root().join("compiler/tests/ui")] {
        aos_files_under(&dir, &mut files);
    }
    files.sort();
    let mut checked = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let (_, diagnostics) = parse(&text, FileId(0));
        if diagnostics.iter().any(|d| d.code == "E0001") {
            assert!(format(&text).is_err(), "{}: broken text must not be rewritten", path.display());
            continue;
        }
        check_promises(&path.display().to_string(), &text);
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} files checked");
}

#[test]
fn repository_examples_and_stdlib_are_formatted() {
    let mut files = Vec::new();
    aos_files_under(&repo_root().join("examples"), &mut files);
    aos_files_under(&repo_root().join("stdlib"), &mut files);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(format(&text).unwrap(), text, "{} is not formatted: run `aosc fmt` on it", path.display());
    }
}

#[test]
fn broken_text_is_refused_with_the_syntax_errors() {
    let diagnostics = format("workflow w( {\n  step a = \n}\n").unwrap_err();
    assert!(!diagnostics.is_empty());
    assert!(diagnostics.iter().all(|d| d.code == "E0001"));
}

mod random_programs {
    //! Random trees printed by the formatter must parse back to themselves,
    //! and the printed text must be a fixed point of `format`.

    use aos_compiler::ast::*;
    use aos_compiler::format::print_file;
    use aos_compiler::span::Span;
    use proptest::prelude::*;

    use super::{format, parse_clean, without_spans};

    fn ident() -> impl Strategy<Value = Ident> {
        prop::sample::select(vec!["a", "b", "rows", "summary", "x_1", "region", "approval", "low", "high", "tone"])
            .prop_map(|n| Ident { name: n.to_string(), span: Span::default() })
    }

    fn key() -> impl Strategy<Value = Ident> {
        prop::sample::select(vec!["retry", "timeout", "when", "max_tokens", "risk", "verify", "in", "budget"])
            .prop_map(|n| Ident { name: n.to_string(), span: Span::default() })
    }

    fn ex(kind: ExprKind) -> Expr {
        Expr { kind, span: Span::default() }
    }

    fn text(triple: bool) -> impl Strategy<Value = String> {
        "[a-z \"{}\\\\\n\t]{1,12}".prop_map(move |s| if triple { format!("q{}", s.replace('\n', "\nq")) } else { s })
    }

    fn string(triple: bool, inner: BoxedStrategy<Expr>) -> impl Strategy<Value = Expr> {
        let part = prop_oneof![text(triple).prop_map(StrPart::Text), inner.prop_map(StrPart::Interp)];
        prop::collection::vec(part, 0..4).prop_map(move |parts| {
            // The parser merges adjacent text: so must a canonical tree.
            let mut merged: Vec<StrPart> = Vec::new();
            for p in parts {
                match (merged.last_mut(), p) {
                    (Some(StrPart::Text(a)), StrPart::Text(b)) => a.push_str(&b),
                    (_, p) => merged.push(p),
                }
            }
            if triple && !matches!(merged.first(), Some(StrPart::Text(_))) {
                merged.insert(0, StrPart::Text("q".into()));
            }
            ex(ExprKind::Str(StrLit { parts: merged, triple }))
        })
    }

    fn money() -> impl Strategy<Value = Money> {
        (0u64..5000, prop::option::of((0u64..1_000_000, 1usize..=6))).prop_map(|(whole, frac)| match frac {
            None => Money { micros: whole * 1_000_000, text: whole.to_string() },
            Some((f, digits)) => {
                let f = f % 10u64.pow(digits as u32);
                let frac_text = format!("{f:0digits$}");
                let micros = whole * 1_000_000 + f * 10u64.pow(6 - digits as u32);
                Money { micros, text: format!("{whole}.{frac_text}") }
            }
        })
    }

    fn leaf() -> impl Strategy<Value = Expr> {
        prop_oneof![
            (0i64..i64::MAX).prop_map(|n| ex(ExprKind::Int(n))),
            prop::sample::select(vec![0.0, 0.7, 1.5e3, 2e-6, 1.0 / 3.0, 1e300, 123.456]).prop_map(|f| ex(ExprKind::Float(f))),
            any::<bool>().prop_map(|b| ex(ExprKind::Bool(b))),
            Just(ex(ExprKind::Null)),
            text(false).prop_map(|t| ex(ExprKind::Str(StrLit { parts: vec![StrPart::Text(t)], triple: false }))),
            (0u64..100_000, prop::sample::select(vec![DurationUnit::Ms, DurationUnit::S, DurationUnit::M, DurationUnit::H, DurationUnit::D]))
                .prop_map(|(value, unit)| ex(ExprKind::Duration(Duration { value, unit }))),
            money().prop_map(|m| ex(ExprKind::Money(m))),
            money().prop_map(|m| ex(ExprKind::Price(m))),
            ident().prop_map(|i| ex(ExprKind::Name(i))),
        ]
    }

    /// A triple-quoted string inside an interpolation has no one-line form
    /// the formatter could keep: the random trees hold plain ones there.
    fn plain_inside_interpolations(e: &mut Expr, inside: bool) {
        let visit = |x: &mut Expr| plain_inside_interpolations(x, inside);
        match &mut e.kind {
            ExprKind::Str(s) => {
                if inside {
                    s.triple = false;
                }
                for part in &mut s.parts {
                    if let StrPart::Interp(x) = part {
                        plain_inside_interpolations(x, true);
                    }
                }
            }
            ExprKind::Field(b, _) | ExprKind::Unary(_, b) => visit(b),
            ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
                visit(a);
                visit(b);
            }
            ExprKind::List(items) => items.iter_mut().for_each(visit),
            ExprKind::Record(entries) => entries.iter_mut().for_each(|(_, v)| visit(v)),
            ExprKind::Call { args, .. } => args.iter_mut().for_each(|a| visit(&mut a.value)),
            _ => {}
        }
    }

    fn expr() -> BoxedStrategy<Expr> {
        raw_expr()
            .prop_map(|mut e| {
                plain_inside_interpolations(&mut e, false);
                e
            })
            .boxed()
    }

    fn raw_expr() -> BoxedStrategy<Expr> {
        leaf()
            .prop_recursive(4, 24, 4, |inner| {
                let ops = prop::sample::select(vec![
                    BinaryOp::Eq,
                    BinaryOp::Ne,
                    BinaryOp::Lt,
                    BinaryOp::Le,
                    BinaryOp::Gt,
                    BinaryOp::Ge,
                    BinaryOp::And,
                    BinaryOp::Or,
                    BinaryOp::Coalesce,
                ]);
                prop_oneof![
                    (inner.clone(), ident()).prop_map(|(b, f)| ex(ExprKind::Field(Box::new(b), f))),
                    (inner.clone(), inner.clone()).prop_map(|(b, i)| ex(ExprKind::Index(Box::new(b), Box::new(i)))),
                    prop::collection::vec(inner.clone(), 0..4).prop_map(|v| ex(ExprKind::List(v))),
                    prop::collection::vec((key(), inner.clone()), 0..4).prop_map(|v| ex(ExprKind::Record(v))),
                    (any::<bool>(), inner.clone()).prop_map(|(not, x)| {
                        ex(ExprKind::Unary(if not { UnaryOp::Not } else { UnaryOp::Neg }, Box::new(x)))
                    }),
                    (ops, inner.clone(), inner.clone()).prop_map(|(op, a, b)| ex(ExprKind::Binary(op, Box::new(a), Box::new(b)))),
                    call(inner.clone()),
                    string(false, inner.clone()),
                    string(true, inner),
                ]
            })
            .boxed()
    }

    fn call(inner: BoxedStrategy<Expr>) -> impl Strategy<Value = Expr> {
        let arg = (prop::option::of(key()), inner).prop_map(|(name, value)| Arg { name, value, span: Span::default() });
        (prop::collection::vec(ident(), 1..3), prop::collection::vec(arg, 0..5))
            .prop_map(|(callee, args)| ex(ExprKind::Call { callee, args }))
    }

    fn step_call() -> impl Strategy<Value = Expr> {
        let simple = prop_oneof![
            call(expr()),
            (ident(), expr(), any::<bool>()).prop_map(|(role, prompt, agent)| ex(ExprKind::Llm { role, prompt: Box::new(prompt), agent })),
        ];
        let inner_step = (ident(), prop::option::of(ty()), simple.clone(), prop::option::of(attrs()))
            .prop_map(|(name, ty, call, attrs)| Step { name, ty, call, attrs, span: Span::default() });
        prop_oneof![
            3 => simple.clone(),
            1 => (ident(), expr(), simple).prop_map(|(var, iter, body)| ex(ExprKind::For { var, iter: Box::new(iter), body: Box::new(body) })),
            1 => (ident(), expr(), prop::collection::vec(inner_step, 0..3), expr()).prop_map(|(var, iter, steps, ret)| {
                let body = ex(ExprKind::Block { steps, ret: Box::new(ret) });
                ex(ExprKind::For { var, iter: Box::new(iter), body: Box::new(body) })
            }),
        ]
    }

    fn ty() -> impl Strategy<Value = TypeExpr> {
        let named = prop::sample::select(vec!["String", "Int", "Json", "SalesRow"]).prop_map(|n| TypeExpr {
            kind: TypeExprKind::Named(Ident { name: n.into(), span: Span::default() }),
            span: Span::default(),
        });
        named.prop_recursive(3, 12, 4, |inner| {
            let t = |kind| TypeExpr { kind, span: Span::default() };
            prop_oneof![
                inner.clone().prop_map(move |i| t(TypeExprKind::List(Box::new(i)))),
                inner
                    .clone()
                    .prop_filter("one `?` only", |i| !matches!(i.kind, TypeExprKind::Optional(_)))
                    .prop_map(move |i| t(TypeExprKind::Optional(Box::new(i)))),
                prop::collection::vec((ident(), inner), 0..5).prop_map(move |f| t(TypeExprKind::Record(f))),
            ]
        })
    }

    fn attrs() -> impl Strategy<Value = Attrs> {
        prop::collection::vec((key(), expr()), 0..5).prop_map(|entries| Attrs {
            entries: entries.into_iter().map(|(key, value)| Attr { key, value, span: Span::default() }).collect(),
            span: Span::default(),
        })
    }

    fn params() -> impl Strategy<Value = Vec<Param>> {
        prop::collection::vec((ident(), ty(), prop::option::of(expr())), 0..4).prop_map(|ps| {
            ps.into_iter().map(|(name, ty, default)| Param { name, ty, default, span: Span::default() }).collect()
        })
    }

    fn test_stmt() -> impl Strategy<Value = TestStmt> {
        let outcome = prop::sample::select(vec![Scripted::Returns, Scripted::Fails]);
        let op = prop::option::of(prop::sample::select(vec![BinaryOp::Eq, BinaryOp::Ne, BinaryOp::Le, BinaryOp::Gt]));
        let kind = prop_oneof![
            (ident(), outcome.clone(), expr()).prop_map(|(role, outcome, value)| TestStmtKind::GivenLlm { role, outcome, value }),
            (ident(), call(expr())).prop_map(|(role, value)| TestStmtKind::GivenLlm { role, outcome: Scripted::Calls, value }),
            (prop::collection::vec(ident(), 1..3), outcome, expr())
                .prop_map(|(tool, outcome, value)| TestStmtKind::GivenTool { tool, outcome, value }),
            (any::<bool>(), ident()).prop_map(|(approve, step)| TestStmtKind::Answer { approve, step }),
            call(expr()).prop_map(TestStmtKind::Run),
            (ident(), op, expr()).prop_map(|(subject, op, value)| TestStmtKind::Expect { subject, op, value }),
        ];
        kind.prop_map(|kind| TestStmt { kind, span: Span::default() })
    }

    fn item() -> impl Strategy<Value = Item> {
        let kind = prop_oneof![
            prop::collection::vec(ident(), 1..3).prop_map(|p| ItemKind::Use(Use::Std(p))),
            "[a-z./{}\"]{0,10}".prop_map(|p| ItemKind::Use(Use::Path(p, Span::default()))),
            (ident(), ty()).prop_map(|(name, ty)| ItemKind::Type(TypeDecl { name, ty })),
            (ident(), prop::collection::vec(ident(), 0..4)).prop_map(|(name, variants)| ItemKind::Enum(EnumDecl { name, variants })),
            (ident(), ident(), "[a-z.-]{1,10}", prop::option::of(attrs())).prop_map(|(name, provider, model_id, attrs)| {
                ItemKind::Model(ModelDecl { name, provider, model_id, model_id_span: Span::default(), attrs })
            }),
            (ident(), prop::collection::vec(ident(), 0..4)).prop_map(|(name, models)| ItemKind::Role(RoleDecl { name, models, attrs: None })),
            (prop::collection::vec(ident(), 2..4), params(), prop::option::of(ty()), prop::option::of(attrs()))
                .prop_map(|(path, params, ret, attrs)| ItemKind::Tool(ToolDecl { path, params, ret, attrs })),
            (ident(), prop::collection::vec((prop::option::of(ident()), expr()), 0..3)).prop_map(|(name, rules)| {
                let rules = rules
                    .into_iter()
                    .map(|(what, cond)| Rule { kind: what.map_or(RuleKind::Deny, RuleKind::Require), cond, span: Span::default() })
                    .collect();
                ItemKind::Policy(PolicyDecl { name, rules })
            }),
            (
                ident(),
                params(),
                prop::option::of(ty()),
                prop::collection::vec((key(), expr()), 0..3),
                prop::collection::vec((ident(), prop::option::of(ty()), step_call(), prop::option::of(attrs())), 0..4),
                prop::option::of(expr()),
            )
                .prop_map(|(name, params, ret, attrs, steps, ret_expr)| {
                    ItemKind::Workflow(Workflow {
                        name,
                        params,
                        ret,
                        attrs: attrs.into_iter().map(|(key, value)| Attr { key, value, span: Span::default() }).collect(),
                        steps: steps
                            .into_iter()
                            .map(|(name, ty, call, attrs)| Step { name, ty, call, attrs, span: Span::default() })
                            .collect(),
                        ret_expr: ret_expr.map(|e| (e, Span::default())),
                    })
                }),
            ("[a-z {}\"]{0,12}", prop::collection::vec(test_stmt(), 0..6))
                .prop_map(|(name, stmts)| ItemKind::Test(TestDecl { name, name_span: Span::default(), stmts })),
        ];
        kind.prop_map(|kind| Item { kind, doc: None, span: Span::default() })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, max_global_rejects: 100_000, ..ProptestConfig::default() })]

        #[test]
        fn printed_trees_parse_back_and_are_fixed_points(items in prop::collection::vec(item(), 0..5)) {
            let file = File { items, comments: Vec::new() };
            let printed = print_file(&file, "");
            let reparsed = parse_clean("random program", &printed);
            prop_assert_eq!(without_spans(&file), without_spans(&reparsed), "printed:\n{}", printed);
            prop_assert_eq!(format(&printed).unwrap(), printed);
        }

        /// Comments sprinkled over a program: at line ends, on lines of
        /// their own and between tokens. Whatever the layout they force, the
        /// formatter's promises hold.
        #[test]
        fn comments_anywhere_keep_the_promises(
            items in prop::collection::vec(item(), 1..4),
            line_comments in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3), 0..6),
            block_comments in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
            breaking_comments in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..3),
        ) {
            let printed = print_file(&File { items, comments: Vec::new() }, "");
            let mut lines: Vec<String> = printed.lines().map(str::to_string).collect();
            for (n, (at, kind)) in line_comments.iter().enumerate() {
                let i = at.index(lines.len());
                match kind {
                    0 => lines[i].push_str(&format!(" // end {n}")),
                    1 => lines.insert(i, format!("// own {n}")),
                    _ => lines.insert(i, String::new()),
                }
            }
            let mut text = lines.join("\n");
            text.push('\n');
            for (n, at) in block_comments.iter().enumerate() {
                let spaces: Vec<usize> = text.match_indices(' ').map(|(i, _)| i).collect();
                if spaces.is_empty() {
                    break;
                }
                let i = spaces[at.index(spaces.len())];
                text.replace_range(i..i + 1, &format!(" /* b{n} */ "));
            }
            // Comments next to punctuation, and line comments that cut a
            // line of code in two.
            for (n, (at, line)) in breaking_comments.iter().enumerate() {
                let places: Vec<usize> = text.match_indices([',', '(', ')', '[', ']', '{', '}', ':', '=', ' ']).map(|(i, _)| i).collect();
                if places.is_empty() {
                    break;
                }
                let i = places[at.index(places.len())];
                let comment = if *line { format!(" // cut {n}\n") } else { format!("/* p{n} */") };
                text.insert_str(i, &comment);
            }
            let (_, diagnostics) = aos_compiler::parse(&text, aos_compiler::FileId(0));
            prop_assume!(!diagnostics.iter().any(|d| d.code == "E0001"));
            super::check_promises("random program with comments", &text);
        }
    }
}

#[test]
fn long_and_or_conditions_break_one_operand_a_line() {
    let src = "policy p {\n  deny when tool == \"shell.exec\" and trust < trusted and risk >= high and effect == external and kind == tool\n}\n";
    let out = aos_compiler::format(src).unwrap();
    assert_eq!(
        out,
        "policy p {\n  deny when tool == \"shell.exec\"\n    and trust < trusted\n    and risk >= high\n    and effect == external\n    and kind == tool\n}\n"
    );
    assert_eq!(aos_compiler::format(&out).unwrap(), out, "formatting is stable");
    assert!(out.lines().all(|l| l.chars().count() <= 100));
}
