//! The lexer on its own: literals, strings (escapes, interpolation with
//! nested strings, triple-quote trimming), comments, and spans.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_compiler::ast::{CommentKind, DurationUnit, ExprKind, ItemKind, StrPart};
use aos_compiler::lexer::{Token, lex};
use aos_compiler::{FileId, parse};

fn tokens(src: &str) -> Vec<Token<'_>> {
    let lexed = lex(src, FileId(0));
    assert!(lexed.diagnostics.is_empty(), "{:?}", lexed.diagnostics);
    lexed.tokens.into_iter().map(|(t, _)| t).collect()
}

fn errors(src: &str) -> Vec<String> {
    lex(src, FileId(0)).diagnostics.into_iter().map(|d| d.message).collect()
}

/// The value of the attribute `x:` of workflow `w` in `src`.
fn value_of(src: &str) -> aos_compiler::ast::Expr {
    let (file, diags) = parse(src, FileId(0));
    assert!(diags.is_empty(), "{diags:#?}");
    let ItemKind::Workflow(w) = &file.items[0].kind else { panic!("no workflow") };
    w.attrs[0].value.clone()
}

/// The text of a string literal without interpolations.
fn text_of(src: &str) -> String {
    let e = value_of(src);
    let ExprKind::Str(lit) = e.kind else { panic!("not a string: {e:?}") };
    lit.parts
        .iter()
        .map(|p| match p {
            StrPart::Text(t) => t.clone(),
            StrPart::Interp(_) => "<interp>".into(),
        })
        .collect()
}

#[test]
fn durations() {
    assert_eq!(tokens("250ms 30s 5m 2h 1d"), vec![
        Token::Duration("250ms"),
        Token::Duration("30s"),
        Token::Duration("5m"),
        Token::Duration("2h"),
        Token::Duration("1d"),
    ]);
    let ExprKind::Duration(d) = value_of("workflow w() { x: 1_500ms }").kind else { panic!() };
    assert_eq!((d.value, d.unit, d.as_millis()), (1500, DurationUnit::Ms, 1500));
    let ExprKind::Duration(d) = value_of("workflow w() { x: 2h }").kind else { panic!() };
    assert_eq!(d.as_millis(), 7_200_000);
}

#[test]
fn numbers_running_into_letters_are_errors() {
    assert_eq!(errors("5min").len(), 1);
    assert_eq!(errors("42abc").len(), 1);
    assert_eq!(errors("$0.50step").len(), 1);
    assert!(errors("1.5e3 2e-6 0.7 1_000").is_empty());
}

#[test]
fn money_and_prices() {
    assert_eq!(tokens("$0.50 $12 $2.50/M $0/M"), vec![
        Token::Money("$0.50"),
        Token::Money("$12"),
        Token::Price("$2.50/M"),
        Token::Price("$0/M"),
    ]);
    let ExprKind::Money(m) = value_of("workflow w() { x: $0.50 }").kind else { panic!() };
    assert_eq!((m.micros, m.text.as_str()), (500_000, "0.50"));
    let ExprKind::Price(m) = value_of("workflow w() { x: $2.5/M }").kind else { panic!() };
    assert_eq!(m.micros, 2_500_000);
    let ExprKind::Money(m) = value_of("workflow w() { x: $0.000001 }").kind else { panic!() };
    assert_eq!(m.micros, 1);
    let (_, diags) = parse("workflow w() { x: $0.0000001 }", FileId(0));
    assert_eq!(diags.len(), 1);
    assert!(diags[0].message.contains("at most 6 digits"));
}

#[test]
fn integers_overflow_is_an_error() {
    assert!(matches!(value_of("workflow w() { x: 9223372036854775807 }").kind, ExprKind::Int(i64::MAX)));
    let (_, diags) = parse("workflow w() { x: 9223372036854775808 }", FileId(0));
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code, "E0001");
}

#[test]
fn escapes() {
    assert_eq!(text_of(r#"workflow w() { x: "a\nb\t\"q\" \\ \{x\} }" }"#), "a\nb\t\"q\" \\ {x} }");
    let errs = errors(r#""bad \q escape""#);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].contains("\\q"), "{errs:?}");
}

#[test]
fn interpolation_holds_nested_strings_with_braces() {
    let src = r#"workflow w() { x: "tags: {join(tags, "} \{")} end" }"#;
    let e = value_of(src);
    let ExprKind::Str(lit) = e.kind else { panic!() };
    assert_eq!(lit.parts.len(), 3);
    let StrPart::Interp(call) = &lit.parts[1] else { panic!() };
    let ExprKind::Call { callee, args } = &call.kind else { panic!("{call:?}") };
    assert_eq!(callee[0].name, "join");
    let ExprKind::Str(inner) = &args[1].value.kind else { panic!() };
    assert_eq!(inner.parts, vec![StrPart::Text("} {".into())]);
    // Spans point into the original file.
    assert_eq!(&src[call.span.range()], r#"join(tags, "} \{")"#);
    assert_eq!(&src[args[0].value.span.range()], "tags");
    assert_eq!(&src[args[1].value.span.range()], r#""} \{""#);
}

#[test]
fn interpolation_errors() {
    assert_eq!(errors(r#""a {} b""#).len(), 1);
    let errs = errors(r#""a {name b""#);
    assert_eq!(errs.len(), 1, "{errs:?}");
    // A lone `}` is text.
    assert_eq!(text_of(r#"workflow w() { x: "a } b" }"#), "a } b");
}

#[test]
fn triple_quoted_strings_trim_indent() {
    let src = "workflow w() { x: \"\"\"\n      Summarize {region}:\n        - one\n      \"\"\" }";
    assert_eq!(text_of(src), "Summarize <interp>:\n  - one");
    // Not trimmed when the first line has text.
    assert_eq!(text_of("workflow w() { x: \"\"\"a\n  b\"\"\" }"), "a\n  b");
    // A blank middle line survives.
    assert_eq!(text_of("workflow w() { x: \"\"\"\n  a\n\n  b\n  \"\"\" }"), "a\n\nb");
    // Kotlin: a run of quotes closes with its last three.
    assert_eq!(text_of("workflow w() { x: \"\"\"say \"hi\"\"\"\" }"), "say \"hi\"");
    // The interpolated expression's span is in the original file.
    let e = value_of(src);
    let ExprKind::Str(lit) = e.kind else { panic!() };
    assert!(lit.triple);
    let StrPart::Interp(i) = &lit.parts[1] else { panic!() };
    assert_eq!(&src[i.span.range()], "region");
}

#[test]
fn unterminated_strings() {
    assert_eq!(errors("\"abc\nx"), vec!["unterminated string".to_string()]);
    assert_eq!(errors("\"\"\"abc\n x"), vec!["unterminated string".to_string()]);
}

#[test]
fn comments_nest_and_are_collected() {
    let src = "/* a /* b */ c */ x // line\n/// doc\n//// not doc\ny";
    let lexed = lex(src, FileId(0));
    assert!(lexed.diagnostics.is_empty());
    let kinds: Vec<_> = lexed.comments.iter().map(|c| (c.kind, c.text.as_str())).collect();
    assert_eq!(kinds, vec![
        (CommentKind::Block, "/* a /* b */ c */"),
        (CommentKind::Line, "// line"),
        (CommentKind::Doc, "/// doc"),
        (CommentKind::Line, "//// not doc"),
    ]);
    assert_eq!(lexed.tokens.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(), vec![Token::Ident("x"), Token::Ident("y")]);
    assert_eq!(errors("/* /* */ never closed"), vec!["unterminated block comment".to_string()]);
}

#[test]
fn doc_comments_attach_to_the_next_item() {
    let src = "/// One row.\n///  Indented.\ntype R = { a: Int }\n// plain\ntype S = Int\n/// dangling\n\n// breaks\nenum E { a }";
    let (file, diags) = parse(src, FileId(0));
    assert!(diags.is_empty());
    assert_eq!(file.items[0].doc.as_deref(), Some("One row.\n Indented."));
    assert_eq!(file.items[1].doc, None);
    assert_eq!(file.items[2].doc, None);
    assert_eq!(file.comments.len(), 5);
}

#[test]
fn stray_characters_are_one_error_per_run() {
    let errs = errors("a ### b @ c");
    assert_eq!(errs, vec!["unexpected characters `###`".to_string(), "unexpected character `@`".to_string()]);
}

#[test]
fn keywords_and_identifiers() {
    assert_eq!(tokens("format uses step when"), vec![
        Token::Ident("format"),
        Token::Ident("uses"),
        Token::Step,
        Token::When,
    ]);
}

#[test]
fn crlf_triple_quoted_strings_are_trimmed_like_lf_ones() {
    let lf = "workflow w() { x: \"\"\"\n    Summarize {a}:\n      rows\n\n    end\n    \"\"\" }";
    let crlf = lf.replace('\n', "\r\n");
    assert_eq!(text_of(lf), "Summarize <interp>:\n  rows\n\nend");
    assert_eq!(text_of(&crlf), text_of(lf));
}

#[test]
fn a_byte_order_mark_is_not_part_of_the_program() {
    let src = "\u{feff}workflow w() { x: 1 }";
    assert!(errors(src).is_empty(), "{:?}", errors(src));
    assert!(matches!(value_of(src).kind, ExprKind::Int(1)));
}
