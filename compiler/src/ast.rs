//! The syntax tree of a `.aos` file.
//!
//! Every node carries the byte [`Span`] it was parsed from. The parser always
//! returns a tree: where the source is broken it leaves an `Error` node (and a
//! diagnostic), and later passes skip such nodes silently so that one mistake
//! gives one diagnostic.

use serde::{Deserialize, Serialize};

use crate::span::Span;

/// A name as written, with where it was written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A whole file: its items in source order, plus the comments the lexer saw
/// (kept for the formatter, which must not lose them).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct File {
    pub items: Vec<Item>,
    pub comments: Vec<Comment>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    pub kind: CommentKind,
    /// The full text of the comment including its `//`, `///` or `/* */`.
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommentKind {
    Line,
    Block,
    /// `/// …`, attached to the next declaration; also recorded on the item.
    Doc,
}

/// A top-level declaration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub kind: ItemKind,
    /// The text of the `///` comments right before the item, without the
    /// slashes, one line each, joined with `\n`.
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ItemKind {
    Use(Use),
    Type(TypeDecl),
    Enum(EnumDecl),
    Model(ModelDecl),
    Role(RoleDecl),
    Tool(ToolDecl),
    Policy(PolicyDecl),
    Workflow(Workflow),
    /// `test "NAME" { … }`: a scripted run of a workflow (docs/language.md, Tests).
    Test(TestDecl),
    /// Text that could not be parsed as an item (already reported).
    Error,
}

/// `use std.email` or `use "./file.aos"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Use {
    /// `use std.a.b`: the segments after `std`.
    Std(Vec<Ident>),
    /// `use "./path.aos"`: the path as written, and the span of the literal.
    Path(String, Span),
}

/// `type Name = T`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypeDecl {
    pub name: Ident,
    pub ty: TypeExpr,
}

/// `enum Name { a, b }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnumDecl {
    pub name: Ident,
    pub variants: Vec<Ident>,
}

/// `model NAME = PROVIDER("id") { attrs }` (the block is optional).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelDecl {
    pub name: Ident,
    pub provider: Ident,
    pub model_id: String,
    pub model_id_span: Span,
    pub attrs: Option<Attrs>,
}

/// `role NAME = [m1, m2]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleDecl {
    pub name: Ident,
    pub models: Vec<Ident>,
    /// `{ route: measured(latency) }` (docs/language.md, *Routing*).
    #[serde(default)]
    pub attrs: Option<Attrs>,
}

/// `tool ns.name(params) -> T { attrs }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolDecl {
    /// The dotted name, at least two segments.
    pub path: Vec<Ident>,
    pub params: Vec<Param>,
    pub ret: Option<TypeExpr>,
    pub attrs: Option<Attrs>,
}

/// A parameter of a tool or workflow: `name: T = default`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Param {
    pub name: Ident,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
    pub span: Span,
}

/// `policy NAME { rules }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyDecl {
    pub name: Ident,
    pub rules: Vec<Rule>,
}

/// One rule of a policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub kind: RuleKind,
    pub cond: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RuleKind {
    /// `require WHAT when …`; WHAT is `approval` or `verify` (checked later).
    Require(Ident),
    /// `deny when …`.
    Deny,
}

/// `workflow name(params) -> T { header attrs, steps, return }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: Option<TypeExpr>,
    /// Header attributes (`intent`, `budget`, `risk`, …), in source order.
    pub attrs: Vec<Attr>,
    pub steps: Vec<Step>,
    /// `return EXPR`, with the span of the whole statement.
    pub ret_expr: Option<(Expr, Span)>,
}

/// `test "NAME" { statements }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestDecl {
    /// The name as written (a plain string).
    pub name: String,
    pub name_span: Span,
    /// The statements in source order.
    pub stmts: Vec<TestStmt>,
}

/// One statement of a test block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestStmt {
    pub kind: TestStmtKind,
    pub span: Span,
}

/// What a scripted call does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scripted {
    /// `replies VALUE` (an LLM) or `returns VALUE` (a tool).
    Returns,
    /// `fails "MESSAGE"`.
    Fails,
    /// `calls TOOL(ARGS)` (an LLM): a turn of an agent step that calls a tool.
    Calls,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TestStmtKind {
    /// `given llm ROLE replies|fails|calls VALUE` (`calls` takes a call).
    GivenLlm { role: Ident, outcome: Scripted, value: Expr },
    /// `given tool a.b returns|fails VALUE`.
    GivenTool { tool: Vec<Ident>, outcome: Scripted, value: Expr },
    /// `approve STEP` (true) or `deny STEP` (false).
    Answer { approve: bool, step: Ident },
    /// `run WORKFLOW(args)`: an `ExprKind::Call` (or `Error`).
    Run(Expr),
    /// `expect SUBJECT [OP] VALUE`.
    Expect { subject: Ident, op: Option<BinaryOp>, value: Expr },
}

/// `step name [: T] = CALL [{ attrs }]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
    /// The call: an `ExprKind::Call`, `ExprKind::Llm` or `ExprKind::For`
    /// (or `ExprKind::Error`).
    pub call: Expr,
    pub attrs: Option<Attrs>,
    pub span: Span,
}

/// `{ key: value, … }` on a model, tool or step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attrs {
    pub entries: Vec<Attr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attr {
    pub key: Ident,
    pub value: Expr,
    pub span: Span,
}

/// A type as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypeExpr {
    pub kind: TypeExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TypeExprKind {
    /// A named type: a built-in (`String`, `Int`, …) or a declared one.
    Named(Ident),
    /// `List<T>`.
    List(Box<TypeExpr>),
    /// `T?`.
    Optional(Box<TypeExpr>),
    /// `{ field: T, … }`.
    Record(Vec<(Ident, TypeExpr)>),
    Error,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Str(StrLit),
    Duration(Duration),
    Money(Money),
    /// `$2.50/M`: a price per million tokens.
    Price(Money),
    Name(Ident),
    Field(Box<Expr>, Ident),
    Index(Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
    Record(Vec<(Ident, Expr)>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `path(args)`: a tool call (`ns.name`, two or more segments), a
    /// workflow call or a built-in (`len`, `secret`, `cron`, …).
    Call { callee: Vec<Ident>, args: Vec<Arg> },
    /// `llm ROLE(prompt)`, or with `agent` (`agent ROLE(prompt)`) a
    /// bounded agent that may call the step's `tools:` (docs/language.md,
    /// Agent steps).
    Llm { role: Ident, prompt: Box<Expr>, agent: bool },
    /// `for x in LIST => CALL`, or `for x in LIST => { steps… return EXPR }`
    /// (the body an `ExprKind::Block`).
    For { var: Ident, iter: Box<Expr>, body: Box<Expr> },
    /// `{ step … return EXPR }`: the body of a fan-out that runs a block of
    /// steps per item (docs/language.md, Fan-out blocks). Only after `=>`.
    Block { steps: Vec<Step>, ret: Box<Expr> },
    /// Broken source (already reported).
    Error,
}

/// A call argument: `name: expr` or a positional `expr`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

/// A string literal split into literal text (escapes already processed,
/// triple-quoted indentation already removed) and interpolations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrLit {
    pub parts: Vec<StrPart>,
    /// Written with `"""`; the formatter keeps the form.
    pub triple: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StrPart {
    Text(String),
    Interp(Expr),
}

/// A duration literal: the number and unit as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Duration {
    pub value: u64,
    pub unit: DurationUnit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DurationUnit {
    Ms,
    S,
    M,
    H,
    D,
}

impl Duration {
    /// The duration in milliseconds (saturating).
    pub fn as_millis(&self) -> u64 {
        let factor = match self.unit {
            DurationUnit::Ms => 1,
            DurationUnit::S => 1_000,
            DurationUnit::M => 60_000,
            DurationUnit::H => 3_600_000,
            DurationUnit::D => 86_400_000,
        };
        self.value.saturating_mul(factor)
    }
}

/// An amount of US dollars, exact: `$0.50` is 500_000 micro-dollars.
/// The digits as written are kept so that formatting round-trips.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub micros: u64,
    /// The number as written after `$` (e.g. `2.50`).
    pub text: String,
}

impl Money {
    pub fn dollars(&self) -> f64 {
        self.micros as f64 / 1_000_000.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    /// `??`
    Coalesce,
}

impl BinaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Coalesce => "??",
        }
    }
}
