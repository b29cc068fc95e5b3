//! The diagnostic catalog: every code the checker reports, with a title, an
//! explanation and a short example (in the way of rustc's
//! `rustc_error_codes`). `aosc explain CODE` prints an entry,
//! `docs/diagnostics.md` is generated from the catalog (a test fails when it
//! is stale), and the language server links each diagnostic to its entry.

use std::fmt;

/// One entry of the catalog.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub code: Code,
    /// A line, as in the table of LANGUAGE.md §4.
    pub title: &'static str,
    /// Why it is reported and what to do, in a paragraph or two.
    pub explanation: &'static str,
    /// A short program that gets the diagnostic (the line marked
    /// `// error` or `// warning`), and how to fix it.
    pub example: &'static str,
}

macro_rules! catalog {
    ($($code:ident: $title:literal, $explanation:literal, $example:literal;)*) => {
        /// A diagnostic code: `E0201`. Errors fail the check; `W…` codes are
        /// warnings.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $(
                #[doc = $title]
                $code,
            )*
        }

        /// The catalog, in code order.
        pub const CATALOG: &[Entry] = &[
            $(Entry { code: Code::$code, title: $title, explanation: $explanation, example: $example },)*
        ];

        impl Code {
            /// Every code, in order.
            pub const ALL: &[Code] = &[$(Code::$code,)*];

            /// The code as written: `"E0201"`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$code => stringify!($code),)*
                }
            }
        }
    };
}

catalog! {
    E0001: "syntax error (the parser recovers and reports every one it can)",
    "The text is not a program of the language: a bracket is not closed, a token stands where another was expected, a string or comment never ends, a number runs into letters. The parser recovers at the next item or line and reports every error it can, so one stray character gives one diagnostic, not a cascade.",
    "workflow w() -> Int {\n  budget: $0\n  return 1 +   // error: expected an expression\n}";

    E0101: "unknown name (step, parameter, model, role, type, workflow)",
    "A name does not refer to anything visible: a step, parameter or fan-out variable of the workflow, a declared or built-in role, model, type or workflow, a field of a record type, or a policy fact. Names are visible file-wide and across `use`d files, in any order. The message suggests the nearest known name when there is one.",
    "workflow w(topic: String) -> String {\n  budget: $0\n  return topc   // error: unknown name `topc` (did you mean `topic`?)\n}";

    E0102: "duplicate definition in the same scope",
    "Two declarations of the same kind have the same name (two models `m`, two steps `a` of one workflow, two parameters), or an attribute block has the same key twice. The first one counts; rename or remove the other.",
    "model m = sim(\"a\")\nmodel m = sim(\"b\")   // error: `m` is declared twice";

    E0103: "unknown tool",
    "A step calls a dotted name that is no declared tool. A standard-library tool needs its module: `use std.email` makes `email.send` visible. A tool name one edit away from a known tool in a policy condition is reported too, since the typo would silently disable the rule.",
    "workflow w() {\n  budget: $0\n  step s = email.send(to: \"a@b.c\", subject: \"s\", body: \"b\")   // error: add `use std.email`\n}";

    E0104: "cannot resolve a `use`",
    "A `use std.NAME` names no module of the standard library, or a `use \"path.aos\"` file cannot be read (the path is relative to the file that uses it).",
    "use std.emial   // error: no module `std.emial` (did you mean `std.email`?)";

    E0105: "an attribute that the item does not take (with a did-you-mean)",
    "Every workflow header, step, tool and model takes a fixed set of attributes (see the attribute reference in docs/language.md). A key that the item does not take is an error rather than a silent default: a misspelt `max_tokns:` would otherwise leave the cost bound at the default 1,024 tokens. The message suggests the nearest attribute, or names the item that does take the key.",
    "step a = llm executor(\"Explain {topic}\") {\n  max_tokns: 40   // error: a step has no attribute `max_tokns` (did you mean `max_tokens`?)\n}";

    E0106: "an attribute value out of range (a negative `retry`, `timeout`, `max_tokens`, `concurrency`…, or a duration or amount too large to represent)",
    "A count (`retry`, `max_items`, `fail_first`) must not be negative; a token bound (`max_tokens`, `max_output_tokens`, `max_param_tokens`), `concurrency` and `max_concurrency` must be at least 1; a `timeout` must be positive; `min_confidence` lies in 0..=1; a duration must fit in 64-bit milliseconds. Out-of-range values used to be replaced by defaults without a word; now they are errors.",
    "step a = llm executor(\"Explain {topic}\") {\n  retry: -1   // error: `retry:` is negative (-1)\n}";

    E0201: "type mismatch",
    "A value does not fit where it goes: an argument of the wrong type, a return value that is not the declared type, an attribute of the wrong kind (`max_tokens: \"40\"`), a comparison of unrelated types, a `fallback:` whose result differs from its step's call. Every value is assignable to `Json`; a declared step type may refine a `Json` result.",
    "workflow w() -> Int {\n  budget: $0\n  return \"one\"   // error: workflow `w` returns `Int`, found `String`\n}";

    E0202: "missing, unknown or duplicate argument in a call",
    "A call of a tool or workflow must name each required parameter once, and only parameters it has. Parameters with a default or of optional type may be left out.",
    "step s = file.read(pth: \"a.txt\")   // error: unknown argument `pth` (did you mean `path`?)";

    E0203: "an optional value (`T?`) used where `T` is required",
    "A step with `when:` may be skipped, so its value is `T?`; so is an optional parameter. Give a default with `??` before using it where a `T` is needed.",
    "step b = llm executor(\"Use {a}\")   // error when `a` has `when:`; write \"{a ?? \\\"none\\\"}\"";

    E0204: "a type with no finite value: an alias cycle, or a record that contains itself with no `?` or `List` in between",
    "A value of such a type would have to contain itself forever, so no JSON value validates against it and no LLM reply can satisfy its schema. Recursion through an optional field (`next: Node?`) or a list (`children: List<Tree>`) is fine: the value can end there.",
    "type Node = { name: String, next: Node }   // error: write `next: Node?`";

    E0301: "the step graph has a cycle (the message names the cycle)",
    "A step depends on every step it mentions and on those in its `after:`; these edges must form a DAG, or no step of the cycle could ever start.",
    "step a = llm executor(\"{b}\")\nstep b = llm executor(\"{a}\")   // error: `a` → `b` → `a`";

    E0302: "`after:` names a step that does not exist in this workflow",
    "`after: [x]` orders a step after another step of the same workflow; the name must be one of its steps.",
    "step a = file.read(path: \"x\") { after: [lod] }   // error: no step `lod` (did you mean `load`?)";

    E0303: "workflows that call each other in a cycle (the message names it): a run would have no finite cost bound",
    "A workflow that calls itself, directly or through others (by a step, a fan-out or a `fallback:`), has no finite worst-case cost and a run of it need not end. There are no loops in the language: computation that repeats is a fan-out over a list.",
    "workflow ping(x: String) -> String {\n  budget: $1\n  step y = pong(x: x)   // error: `ping` → `pong` → `ping`\n  return y\n}\nworkflow pong(x: String) -> String {\n  budget: $1\n  step z = ping(x: x)\n  return z\n}";

    E0401: "an LLM step names a role that is bound to no model",
    "`llm ROLE(…)` and `verify: ROLE` need a `role ROLE = [model, …]` with at least one model; the built-in roles exist without a declaration but are bound to nothing until declared.",
    "step a = llm planner(\"Plan\")   // error: add `role planner = [m]`";

    E0402: "`verify:` names a role that shares a model with the verified step's role",
    "A verifier that runs on the same model as the step it checks shares its blind spots; bind the verifying role to other models.",
    "role executor = [m]\nrole verifier = [m]\nstep a = llm executor(\"x\") { verify: verifier }   // error: both use `m`";

    E0403: "unknown provider, or a model attribute that is missing or malformed",
    "A model's provider must be `openai`, `anthropic`, `gemini` or `sim`. A real provider's model needs `input`, `output` (per-million-token prices, `$2.50/M`) and `context` (tokens), since the cost bound depends on them; a malformed value (a price without `/M`, `context: 0`) is reported here.",
    "model m = anthropic(\"claude-haiku-3.5\") { input: $0.80 }   // error: write `$0.80/M`; add `output` and `context`";

    E0404: "a prompt's token bound exceeds a model's context window",
    "The prompt's bound (the template's tokens plus the bound of every interpolated value) plus `max_tokens` must fit in the `context` of every model of the role; bound the inputs (`max_input_tokens:`, a tool's `max_output_tokens`) or use a model with a larger window.",
    "model small = sim(\"x\") { context: 100 }\nstep a = llm executor(\"{big_text}\")   // error: may need more than 100 tokens";

    E0501: "the worst-case cost of a run exceeds the workflow's `budget`",
    "The checker bounds what one run can spend (see docs/cost.md and `aosc check --cost`). When the bound is above `budget:`, either raise the budget, lower `max_tokens`/`retry`/`max_items`, or use cheaper models.",
    "workflow w() {\n  budget: $0.0001   // error: a run can cost up to $0.0041\n  step a = llm executor(\"x\") { max_tokens: 1000 }\n}";

    E0502: "a cost cannot be bounded (unbounded fan-out, or a prompt with no size bound)",
    "A fan-out over a list of unknown length needs `max_items:`; a prompt that interpolates a value with no size bound (a parameter of unbounded type read from outside, a tool without `max_output_tokens`) needs `max_input_tokens:`.",
    "step e = for d in docs => llm executor(\"{d}\")   // error: add `{ max_items: 10 }`";

    E0601: "a policy `require` is not met (the message names policy and rule)",
    "A `require approval when …` or `require verify when …` rule decided true at check time for a step that has no `approval:` (or `verify:`). A rule that depends on the run's trust level is enforced by the runtime instead.",
    "policy p { require approval when risk >= high }\nstep s = email.send(…)   // error: add `approval: \"team\"`";

    E0602: "a step has no `approval` although its risk exceeds the workflow's `risk` ceiling, or is `critical`",
    "The workflow's `risk:` (default `medium`) is the ceiling for steps that run unattended; a step above it, or any `critical` step, needs a human gate.",
    "step s = shell.exec(command: [\"rm\", \"x\"])   // error: risk high > ceiling medium; add `approval: \"ops\"`";

    E0603: "a policy `deny` matches statically",
    "A `deny when …` rule is true for a step whatever the trust level of the run: the step can never run. `approval:` does not lift a deny.",
    "policy p { deny when tool == \"shell.exec\" }\nstep s = shell.exec(command: [\"ls\"])   // error";

    E0701: "a secret flows into an LLM prompt, a string, a return value, or a tool parameter not declared `Secret` (reported as E0701, not E0201)",
    "`secret(\"NAME\")` is a `Secret`; it may only be passed to tool parameters declared `Secret`. Interpolating it, returning it or sending it to a model would leak it.",
    "step a = llm executor(\"key: {secret(\\\"API_KEY\\\")}\")   // error";

    E0801: "a test block names an unknown workflow, role, tool, step or parameter",
    "A `test` block runs a workflow of the program (`run NAME(…)`), scripts roles (`given llm ROLE …`) and tools (`given tool NAME …`) that the program declares, answers the approval gates of the workflow's steps and expects steps by name. Each of these names must exist; the message suggests the nearest one.",
    "test \"greets\" {\n  given llm executer replies \"Hi\"   // error: no role `executer` (did you mean `executor`?)\n  run hello(name: \"Ada\")\n}";

    E0802: "a test block's value does not fit (an argument, a scripted reply or tool result, an expected output or cost)",
    "The values of a test are literals checked against what they stand for: an argument against the workflow's parameter, a tool result against the tool's return type, an expected output against the workflow's return type, `expect cost` against an amount (`$0.01`), a `fails` message and `expect error` against a string. A reply to a role whose steps are all untyped (`String`) must be a string. A value must be a literal (no names or interpolations): a test states what it expects.",
    "test \"counts\" {\n  run count(text: 42)   // error: parameter `text` is a `String`, found 42\n}";

    E0803: "a malformed test block (no `run` or two, an unknown `expect`, an answer to a step without a gate, a duplicate test name)",
    "A test runs exactly one workflow, so it has exactly one `run`. `expect` takes `output`, `cost`, `ran`, `skipped`, `approvals`, `status` or `error`; `approve` and `deny` answer steps that have `approval:`; two tests of a file cannot have the same name (filters and reports name them).",
    "test \"x\" {\n  expect outptu == \"Hi\"   // error: unknown expectation `outptu` (did you mean `output`?)\n}";

    E0901: "a malformed agent step (no `tools:`, a tool listed twice, agent attributes on another step, an `agent` as a `fallback:`)",
    "An agent step (`agent ROLE(prompt) { tools: [...] }`) lets the model call the listed tools for at most `max_turns:` turns; its `tools:` must list one or more declared tools, each once. `tools:`, `max_turns:` and `max_tool_calls:` mean nothing on another step. An agent step takes `verify:` (its final answer is cross-checked) and `fallback:` like an `llm` step, but an `agent` call stands only as the call of a step (or the body of its fan-out), never as a `fallback:`.",
    "step s = agent executor(\"Check {url}\") {\n  max_turns: 4   // error: an agent step needs `tools: [...]`\n}";

    W0101: "a step's output is never used and it has no external effect",
    "A step whose value no other step, `return` or condition uses, and whose tool has no external effect, does work for nothing (its cost still counts). Use it, remove it, or give it an effect.",
    "step unused = file.read(path: \"a.txt\")   // warning";

    W0501: "a workflow has no `budget` (its worst-case cost is reported)",
    "Without `budget:` nothing bounds what a run may spend; the warning gives the computed worst case, to use as the budget.",
    "workflow w() {   // warning: add `budget: $0.0041`\n  step a = llm executor(\"x\")\n}";
}

impl Code {
    /// The code of `text` (`"E0201"`, case-insensitive), if the catalog has it.
    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// The catalog entry of this code.
    pub fn entry(self) -> &'static Entry {
        // `CATALOG` lists every code in the order of `ALL`, so the search
        // always finds one; the first entry stands in otherwise.
        CATALOG.iter().find(|e| e.code == self).unwrap_or(&CATALOG_FALLBACK)
    }

    pub fn title(self) -> &'static str {
        self.entry().title
    }

    /// Whether the code is a warning (`W…`).
    pub fn is_warning(self) -> bool {
        self.as_str().starts_with('W')
    }

    /// The anchor of the code's section in `docs/diagnostics.md`.
    pub fn anchor(self) -> String {
        self.as_str().to_ascii_lowercase()
    }
}

const CATALOG_FALLBACK: Entry = Entry { code: Code::E0001, title: "", explanation: "", example: "" };

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Code> for &str {
    fn eq(&self, other: &Code) -> bool {
        *self == other.as_str()
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What `aosc explain CODE` prints: the title, the explanation and the
/// example.
pub fn explain(code: Code) -> String {
    let e = code.entry();
    format!("{}: {}\n\n{}\n\nExample:\n\n{}\n", code, e.title, wrap(e.explanation, 78), indent(e.example))
}

/// `docs/diagnostics.md`, generated from the catalog.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Diagnostics\n\n<!-- Generated from compiler/src/codes.rs by `aosc explain --markdown`; \
         a test fails when this page is stale. Do not edit by hand. -->\n\n\
         Every finding of `aosc check` has a stable code. `aosc explain CODE` prints its entry.\n\n\
         | code | finding |\n|---|---|\n",
    );
    for e in CATALOG {
        out.push_str(&format!("| [{}](#{}) | {} |\n", e.code, e.code.anchor(), e.title.replace('|', "\\|")));
    }
    for e in CATALOG {
        out.push_str(&format!("\n## {}\n\n{}\n\n{}\n\n```aos\n{}\n```\n", e.code, e.title, e.explanation, e.example));
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split_whitespace() {
        let w = word.chars().count();
        if line > 0 && line + 1 + w > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += w;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_an_entry_and_parses_back() {
        assert_eq!(CATALOG.len(), Code::ALL.len());
        for &c in Code::ALL {
            assert_eq!(c.entry().code, c);
            assert!(!c.title().is_empty() && !c.entry().explanation.is_empty() && !c.entry().example.is_empty());
            assert_eq!(Code::parse(c.as_str()), Some(c));
            assert_eq!(Code::parse(&c.as_str().to_lowercase()), Some(c));
        }
        assert_eq!(Code::parse("E9999"), None);
    }

    #[test]
    fn explain_names_the_code() {
        let text = explain(Code::E0105);
        assert!(text.starts_with("E0105: an attribute that the item does not take"), "{text}");
        assert!(text.contains("max_tokns"), "{text}");
    }
}
