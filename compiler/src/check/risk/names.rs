//! The names of risk levels, effects, trust levels and step kinds, and the
//! one conversion between them and the IR's enums.

use super::*;

/// The risk levels, lowest first.
pub const RISK_LEVELS: &[&str] = &["low", "medium", "high", "critical"];
/// The effects, weakest first.
pub const EFFECTS: &[&str] = &["pure", "read", "external"];
/// The trust levels of whoever starts a run, lowest first.
pub const TRUST_LEVELS: &[&str] = &["untrusted", "basic", "trusted", "admin"];
/// The kinds of step.
pub const KINDS: &[&str] = &["tool", "llm", "workflow"];

/// The risk level a name denotes.
pub fn parse_risk(name: &str) -> Option<Risk> {
    match name {
        "low" => Some(Risk::Low),
        "medium" => Some(Risk::Medium),
        "high" => Some(Risk::High),
        "critical" => Some(Risk::Critical),
        _ => None,
    }
}

/// The effect a name denotes.
pub fn parse_effect(name: &str) -> Option<Effect> {
    match name {
        "pure" => Some(Effect::Pure),
        "read" => Some(Effect::Read),
        "external" => Some(Effect::External),
        _ => None,
    }
}

/// The trust level a name denotes.
pub fn parse_trust(name: &str) -> Option<Trust> {
    match name {
        "untrusted" => Some(Trust::Untrusted),
        "basic" => Some(Trust::Basic),
        "trusted" => Some(Trust::Trusted),
        "admin" => Some(Trust::Admin),
        _ => None,
    }
}

/// The step kind a name denotes.
pub fn parse_kind(name: &str) -> Option<StepKind> {
    match name {
        "tool" => Some(StepKind::Tool),
        "llm" => Some(StepKind::Llm),
        "workflow" => Some(StepKind::Workflow),
        _ => None,
    }
}

pub fn risk_name(risk: Risk) -> &'static str {
    match risk {
        Risk::Low => "low",
        Risk::Medium => "medium",
        Risk::High => "high",
        Risk::Critical => "critical",
    }
}

pub fn effect_name(effect: Effect) -> &'static str {
    match effect {
        Effect::Pure => "pure",
        Effect::Read => "read",
        Effect::External => "external",
    }
}

pub fn trust_name(trust: Trust) -> &'static str {
    match trust {
        Trust::Untrusted => "untrusted",
        Trust::Basic => "basic",
        Trust::Trusted => "trusted",
        Trust::Admin => "admin",
    }
}

pub fn kind_name(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Tool => "tool",
        StepKind::Llm => "llm",
        StepKind::Workflow => "workflow",
    }
}

/// The position of an effect on the ladder `pure < read < external`.
pub fn effect_rank(effect: Effect) -> u8 {
    match effect {
        Effect::Pure => 0,
        Effect::Read => 1,
        Effect::External => 2,
    }
}

/// The stronger of two effects.
pub fn stronger_effect(a: Effect, b: Effect) -> Effect {
    if effect_rank(b) > effect_rank(a) { b } else { a }
}
