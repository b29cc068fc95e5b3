//! Fixture files with embedded requests; the answers are snapshotted.
//!
//! A request is a comment line `// @KIND LINE:COL [ARG]` anywhere in the
//! fixture (LINE and COL 1-based, COL in characters), or `// @KIND` for
//! whole-file requests. Kinds: hover, definition, references, completion,
//! rename NEWNAME, actions, diagnostics, symbols, tokens, format, lenses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;

use aos_lsp::features::{
    code_actions, code_lens, completion, definition, diagnostics, formatting, hover, references, rename, semantic_tokens, symbols,
};
use aos_lsp::lsp_types::*;
use aos_lsp::{DocLoader, Snapshot};

fn pos(arg: &str) -> Position {
    let (l, c) = arg.split_once(':').expect("LINE:COL");
    Position::new(l.parse::<u32>().unwrap() - 1, c.parse::<u32>().unwrap() - 1)
}

fn show_range(text: &str, r: &Range) -> String {
    let map = aos_lsp::position::LineMap::new(text);
    let span = map.span(text, *r);
    format!(
        "{}:{}-{}:{} `{}`",
        r.start.line + 1,
        r.start.character + 1,
        r.end.line + 1,
        r.end.character + 1,
        &text[span.range()]
    )
}

fn show_loc(snap: &Snapshot, loc: &Location) -> String {
    let path = loc.uri.path().to_string();
    let file = path.rsplit('/').next().unwrap_or(&path).to_string();
    let text = snap.analysis.sources.iter().find(|(_, p, _)| p.ends_with(&file)).map(|(_, _, t)| t).unwrap_or("");
    format!("{file} {}", show_range(text, &loc.range))
}

fn run(name: &str, text: &str) -> String {
    let snap = Snapshot::new(&format!("tests/fixtures/{name}"), text, &DocLoader::default());
    let mut out = String::new();
    for (n, line) in text.lines().enumerate() {
        let Some(req) = line.trim_start().strip_prefix("// @") else { continue };
        let mut parts = req.split_whitespace();
        let kind = parts.next().unwrap();
        let at = parts.next();
        let arg = parts.next();
        writeln!(out, "--- line {}: @{req}", n + 1).unwrap();
        match kind {
            "hover" => match hover::hover(&snap, pos(at.unwrap())) {
                Some(Hover { contents: HoverContents::Markup(m), range }) => {
                    writeln!(out, "range {}", show_range(text, &range.unwrap())).unwrap();
                    writeln!(out, "{}", m.value.trim_end()).unwrap();
                }
                other => writeln!(out, "{other:?}").unwrap(),
            },
            "definition" => match definition::definition(&snap, pos(at.unwrap())) {
                Some(loc) => writeln!(out, "{}", show_loc(&snap, &loc)).unwrap(),
                None => writeln!(out, "(none)").unwrap(),
            },
            "references" => {
                for loc in references::references(&snap, pos(at.unwrap()), true) {
                    writeln!(out, "{}", show_loc(&snap, &loc)).unwrap();
                }
            }
            "completion" => {
                let items = completion::completion(&snap, pos(at.unwrap()));
                let labels: Vec<String> = items
                    .iter()
                    .map(|i| match &i.detail {
                        Some(d) => format!("{} ({d})", i.label),
                        None => i.label.clone(),
                    })
                    .collect();
                writeln!(out, "{}", labels.join(", ")).unwrap();
            }
            "rename" => match rename::rename(&snap, pos(at.unwrap()), arg.unwrap()) {
                Ok(edit) => {
                    let mut lines: Vec<String> = edit
                        .changes
                        .unwrap()
                        .values()
                        .flatten()
                        .map(|e| format!("{} -> {}", show_range(text, &e.range), e.new_text))
                        .collect();
                    lines.sort();
                    writeln!(out, "{}", lines.join("\n")).unwrap();
                }
                Err(e) => writeln!(out, "refused: {e}").unwrap(),
            },
            "actions" => {
                let uri = aos_lsp::snapshot::path_to_uri("x.aos").unwrap();
                let p = pos(at.unwrap());
                for a in code_actions::code_actions(&snap, &uri, Range::new(p, p)) {
                    let CodeActionOrCommand::CodeAction(a) = a else { continue };
                    writeln!(out, "{}", a.title).unwrap();
                    for e in a.edit.unwrap().changes.unwrap().values().flatten() {
                        writeln!(out, "  at {} insert {:?}", show_range(text, &e.range), e.new_text).unwrap();
                    }
                }
            }
            "diagnostics" => {
                for (uri, diags) in diagnostics::publish(&snap) {
                    for d in diags {
                        let code = match &d.code {
                            Some(NumberOrString::String(s)) => s.clone(),
                            _ => String::new(),
                        };
                        let file = uri.path().to_string();
                        let file = file.rsplit('/').next().unwrap().to_string();
                        writeln!(out, "{file} {code} {} {}", show_range(text, &d.range), d.message).unwrap();
                        for r in d.related_information.unwrap_or_default() {
                            writeln!(out, "  related {}: {}", show_loc(&snap, &r.location), r.message).unwrap();
                        }
                    }
                }
            }
            "symbols" => {
                fn walk(text: &str, syms: &[DocumentSymbol], depth: usize, out: &mut String) {
                    for s in syms {
                        writeln!(
                            out,
                            "{}{} {:?} {} sel {}",
                            "  ".repeat(depth),
                            s.name,
                            s.kind,
                            s.detail.clone().unwrap_or_default(),
                            show_range(text, &s.selection_range)
                        )
                        .unwrap();
                        walk(text, s.children.as_deref().unwrap_or(&[]), depth + 1, out);
                    }
                }
                walk(text, &symbols::document_symbols(&snap), 0, &mut out);
            }
            "tokens" => {
                let legend = semantic_tokens::TYPES;
                let (mut line, mut col) = (0u32, 0u32);
                let lines: Vec<&str> = text.lines().collect();
                let mut shown = Vec::new();
                for t in semantic_tokens::tokens(&snap) {
                    if t.delta_line > 0 {
                        line += t.delta_line;
                        col = t.delta_start;
                    } else {
                        col += t.delta_start;
                    }
                    // Only the lines before the first request are shown.
                    let l: Vec<u16> = lines[line as usize].encode_utf16().collect();
                    let s = String::from_utf16_lossy(&l[col as usize..(col + t.length) as usize]);
                    if lines[line as usize].trim_start().starts_with("// @") {
                        continue;
                    }
                    shown.push(format!("{}:{} {} {}", line + 1, col + 1, legend[t.token_type as usize].as_str(), s));
                }
                writeln!(out, "{}", shown.join("\n")).unwrap();
            }
            "lenses" => {
                for l in code_lens::code_lenses(&snap) {
                    let c = l.command.unwrap();
                    let args = c.arguments.unwrap_or_default();
                    writeln!(out, "{} {} {} {}", show_range(text, &l.range), c.title, c.command, args.get(2).and_then(|a| a.as_str()).unwrap_or("")).unwrap();
                }
            }
            "format" => match formatting::format(text) {
                Some(edits) if edits.is_empty() => writeln!(out, "(already formatted)").unwrap(),
                Some(edits) => writeln!(out, "{}", edits[0].new_text).unwrap(),
                None => writeln!(out, "(does not parse: no edit)").unwrap(),
            },
            other => panic!("unknown request @{other}"),
        }
    }
    out
}

#[test]
fn fixtures() {
    let mut paths: Vec<_> = std::fs::read_dir("tests/fixtures")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "aos"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let answers = run(&name, &text);
        insta::with_settings!({ snapshot_suffix => name.trim_end_matches(".aos").to_string(), prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!("fixture", answers);
        });
    }
}
