//! The normative pest grammar (`grammar/aos.pest`) and the two verdicts the
//! grammar tests compare: the grammar's and the real parser's.

use pest::Parser;
use pest::iterators::Pair;
use pest_derive::Parser;

/// The pest grammar. The path is relative to this crate's `src/`.
#[derive(Parser)]
#[grammar = "../../grammar/aos.pest"]
pub struct AosGrammar;

/// Parses a whole file with the pest grammar; the error is pest's report.
pub fn pest_parse(text: &str) -> Result<Pair<'_, Rule>, String> {
    AosGrammar::parse(Rule::file, text)
        .map(|mut pairs| pairs.next().expect("`file` yields one pair"))
        .map_err(|e| e.to_string())
}

pub fn pest_accepts(text: &str) -> bool {
    pest_parse(text).is_ok()
}

/// The real parser's verdict: accepted when it reports no syntax error.
pub fn parser_accepts(text: &str) -> bool {
    let (_, diagnostics) = aos_compiler::parse(text, aos_compiler::FileId(0));
    !diagnostics.iter().any(|d| d.code == "E0001")
}

/// A snippet wrapped as the value of a workflow header attribute, so that an
/// expression is parsed in a real position and must be followed by `}`.
pub fn expr_file(expr: &str) -> String {
    format!("workflow w() {{\n  x: {expr}\n}}\n")
}

/// A snippet wrapped as a policy condition.
pub fn condition_file(cond: &str) -> String {
    format!("policy p {{\n  deny when {cond}\n}}\n")
}
