//! Verifying IR that did not come from the checker in this process
//! (`aosc run FILE.json`): the runtime trusts the checker's guarantees, so a
//! program read from a file must show them again before it runs.
//!
//! What is verified: the IR version; the shape (every name a map is keyed
//! by matches the item, no duplicate step or parameter, every role, model,
//! tool, workflow and step a program refers to exists); the step graph
//! (steps come in a topological order, so dependencies only point
//! backwards: a DAG); workflow calls form no cycle; approval gates as the
//! risk rules demand (LANGUAGE.md §4: a step above its workflow's ceiling,
//! or critical, needs `approval:`, and a step's risk is at least its tool's
//! and its callee's unattended risk); and budgets and prices (finite, not
//! negative, the worst-case bound within the budget).
//!
//! What cannot be verified without the source: policy rules the checker
//! decided statically (they are not in the IR), and whether the cost bound
//! was computed honestly (only that it is within the budget).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::ir::{self, Call, Expr, InterpPart, Program, Risk, StepKind, Workflow};

/// Why a program read as IR is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "IR version {found} is not supported (this aosc reads version {expected}); re-run `aosc check --emit-ir`"
    )]
    Version { found: u32, expected: u32 },
    #[error("{what} `{key}` is stored under another name (`{name}`)")]
    Key {
        what: &'static str,
        key: String,
        name: String,
    },
    #[error("workflow `{workflow}`: {what} `{name}` is defined twice")]
    Duplicate {
        workflow: String,
        what: &'static str,
        name: String,
    },
    #[error("{place}: refers to {what} `{name}`, which the program does not define")]
    Missing {
        place: String,
        what: &'static str,
        name: String,
    },
    #[error(
        "workflow `{workflow}`: step `{step}` depends on `{dep}`, which does not come before it (the step graph must be a DAG in topological order)"
    )]
    Order {
        workflow: String,
        step: String,
        dep: String,
    },
    #[error(
        "workflow `{workflow}` calls itself through {path}; workflow calls must not form a cycle"
    )]
    Cycle { workflow: String, path: String },
    #[error(
        "workflow `{workflow}`: step `{step}` has risk `{risk:?}` but {why}; the IR understates it"
    )]
    Understated {
        workflow: String,
        step: String,
        risk: Risk,
        why: String,
    },
    #[error(
        "workflow `{workflow}`: step `{step}` has risk `{risk:?}` above the ceiling `{ceiling:?}` (or is critical) and no approval gate"
    )]
    Ungated {
        workflow: String,
        step: String,
        risk: Risk,
        ceiling: Risk,
    },
    #[error("{place}: {what} is {value}, which is not a finite amount of at least 0")]
    Amount {
        place: String,
        what: &'static str,
        value: f64,
    },
    #[error("workflow `{workflow}`: its worst-case cost ${bound} is above its budget ${budget}")]
    OverBudget {
        workflow: String,
        bound: f64,
        budget: f64,
    },
}

/// Checks what the checker guarantees of a program; the first violation
/// found is returned.
pub fn verify(p: &Program) -> Result<(), VerifyError> {
    if p.version != ir::IR_VERSION {
        return Err(VerifyError::Version {
            found: p.version,
            expected: ir::IR_VERSION,
        });
    }
    for (key, m) in &p.models {
        key_matches("model", key, &m.name)?;
        amount(&format!("model `{key}`"), "the input price", m.input_per_m)?;
        amount(
            &format!("model `{key}`"),
            "the output price",
            m.output_per_m,
        )?;
    }
    for (role, chain) in &p.roles {
        for m in chain {
            exists(
                p.models.contains_key(m),
                format!("role `{role}`"),
                "model",
                m,
            )?;
        }
    }
    for (key, t) in &p.tools {
        key_matches("tool", key, &t.name)?;
    }
    for (key, wf) in &p.workflows {
        key_matches("workflow", key, &wf.name)?;
        workflow_shape(p, wf)?;
    }
    no_call_cycles(p)?;
    let mut unattended = HashMap::new();
    for wf in p.workflows.values() {
        gates(p, wf, &mut unattended)?;
    }
    Ok(())
}

fn key_matches(what: &'static str, key: &str, name: &str) -> Result<(), VerifyError> {
    if key == name {
        Ok(())
    } else {
        Err(VerifyError::Key {
            what,
            key: key.to_string(),
            name: name.to_string(),
        })
    }
}

fn exists(ok: bool, place: String, what: &'static str, name: &str) -> Result<(), VerifyError> {
    if ok {
        Ok(())
    } else {
        Err(VerifyError::Missing {
            place,
            what,
            name: name.to_string(),
        })
    }
}

fn amount(place: &str, what: &'static str, value: f64) -> Result<(), VerifyError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(VerifyError::Amount {
            place: place.to_string(),
            what,
            value,
        })
    }
}

fn workflow_shape(p: &Program, wf: &Workflow) -> Result<(), VerifyError> {
    let w = &wf.name;
    let mut params = BTreeSet::new();
    for param in &wf.params {
        if !params.insert(param.name.as_str()) {
            return Err(VerifyError::Duplicate {
                workflow: w.clone(),
                what: "parameter",
                name: param.name.clone(),
            });
        }
    }
    let place = format!("workflow `{w}`");
    if let Some(b) = wf.budget_usd {
        amount(&place, "the budget", b)?;
    }
    amount(&place, "the worst-case cost", wf.cost_bound_usd)?;
    if let Some(b) = wf.budget_usd
        && wf.cost_bound_usd > b * (1.0 + 1e-9) + 1e-12
    {
        return Err(VerifyError::OverBudget {
            workflow: w.clone(),
            bound: wf.cost_bound_usd,
            budget: b,
        });
    }
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for s in &wf.steps {
        let place = format!("workflow `{w}`, step `{}`", s.name);
        if seen.contains(s.name.as_str()) {
            return Err(VerifyError::Duplicate {
                workflow: w.clone(),
                what: "step",
                name: s.name.clone(),
            });
        }
        for d in &s.deps {
            if !seen.contains(d.as_str()) {
                if wf.steps.iter().any(|o| &o.name == d) {
                    return Err(VerifyError::Order {
                        workflow: w.clone(),
                        step: s.name.clone(),
                        dep: d.clone(),
                    });
                }
                return Err(VerifyError::Missing {
                    place,
                    what: "step",
                    name: d.clone(),
                });
            }
        }
        amount(&place, "the cost bound", s.cost.usd)?;
        call_refs(p, &place, &s.call)?;
        if let Some(f) = &s.fallback {
            call_refs(p, &place, f)?;
        }
        if let Some(v) = &s.verify {
            exists(
                p.roles.contains_key(&v.role),
                place.clone(),
                "role",
                &v.role,
            )?;
        }
        // Values the step reads: parameters and earlier steps it depends on.
        let mut exprs: Vec<&Expr> = Vec::new();
        call_exprs(&s.call, &mut exprs);
        if let Some(f) = &s.fallback {
            call_exprs(f, &mut exprs);
        }
        exprs.extend(s.when.iter());
        exprs.extend(s.idempotency_key.iter());
        exprs.extend(s.fan_out.as_ref().map(|f| &f.items));
        for e in exprs {
            expr_refs(e, &mut |what, name| match what {
                "parameter" => exists(params.contains(name), place.clone(), what, name),
                _ => exists(
                    s.deps.iter().any(|d| d == name),
                    place.clone(),
                    "dependency",
                    name,
                ),
            })?;
        }
        seen.insert(&s.name);
    }
    if let Some(e) = &wf.ret_expr {
        expr_refs(e, &mut |what, name| match what {
            "parameter" => exists(
                params.contains(name),
                format!("workflow `{w}`, return"),
                what,
                name,
            ),
            _ => exists(
                seen.contains(name),
                format!("workflow `{w}`, return"),
                "step",
                name,
            ),
        })?;
    }
    Ok(())
}

fn call_refs(p: &Program, place: &str, call: &Call) -> Result<(), VerifyError> {
    match call {
        Call::Tool { tool, .. } => {
            exists(p.tools.contains_key(tool), place.to_string(), "tool", tool)
        }
        Call::Llm { role, agent, .. } => {
            for t in agent.iter().flat_map(|a| &a.tools) {
                exists(p.tools.contains_key(&t.tool), place.to_string(), "tool", &t.tool)?;
            }
            exists(p.roles.contains_key(role), place.to_string(), "role", role)
        }
        Call::Workflow { workflow, .. } => exists(
            p.workflows.contains_key(workflow),
            place.to_string(),
            "workflow",
            workflow,
        ),
    }
}

fn call_exprs<'a>(call: &'a Call, out: &mut Vec<&'a Expr>) {
    match call {
        Call::Tool { args, .. } | Call::Workflow { args, .. } => out.extend(args.values()),
        Call::Llm { prompt, .. } => out.push(prompt),
    }
}

/// Calls `f("parameter" | "step", name)` for every parameter and step an
/// expression reads.
fn expr_refs(
    e: &Expr,
    f: &mut dyn FnMut(&'static str, &str) -> Result<(), VerifyError>,
) -> Result<(), VerifyError> {
    // An explicit stack: hand-edited IR may nest deeper than recursion allows.
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match e {
            Expr::Param { name } => f("parameter", name)?,
            Expr::Step { name } => f("step", name)?,
            Expr::Lit { .. } | Expr::Var { .. } | Expr::Secret { .. } => {}
            Expr::Interp { parts } => stack.extend(parts.iter().filter_map(|p| match p {
                InterpPart::Expr { expr } => Some(expr),
                InterpPart::Text { .. } => None,
            })),
            Expr::Field { of, .. } => stack.push(of),
            Expr::Index { of, index } => stack.extend([of.as_ref(), index.as_ref()]),
            Expr::List { items } | Expr::Builtin { args: items, .. } => stack.extend(items.iter()),
            Expr::Record { fields } => stack.extend(fields.iter().map(|(_, e)| e)),
            Expr::Not { a } | Expr::Neg { a } => stack.push(a),
            Expr::Binary { a, b, .. } => stack.extend([a.as_ref(), b.as_ref()]),
        }
    }
    Ok(())
}

/// Workflow calls form no cycle (the checker refuses recursion).
fn no_call_cycles(p: &Program) -> Result<(), VerifyError> {
    let callees: BTreeMap<&str, Vec<&str>> = p
        .workflows
        .values()
        .map(|wf| {
            let calls = wf
                .steps
                .iter()
                .flat_map(|s| [Some(&s.call), s.fallback.as_ref()])
                .flatten()
                .filter_map(|c| match c {
                    Call::Workflow { workflow, .. } => Some(workflow.as_str()),
                    _ => None,
                })
                .collect();
            (wf.name.as_str(), calls)
        })
        .collect();
    // Iterative depth-first search: 0 unseen, 1 on the path, 2 done.
    let mut mark: HashMap<&str, u8> = HashMap::new();
    for start in callees.keys() {
        if mark.get(start).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start, 0)];
        mark.insert(start, 1);
        while let Some((node, next)) = path.last().copied() {
            let out = callees.get(node).map(Vec::as_slice).unwrap_or_default();
            if let Some(&callee) = out.get(next) {
                if let Some(top) = path.last_mut() {
                    top.1 += 1;
                }
                match mark.get(callee).copied().unwrap_or(0) {
                    0 => {
                        mark.insert(callee, 1);
                        path.push((callee, 0));
                    }
                    1 => {
                        let from = path.iter().position(|(n, _)| *n == callee).unwrap_or(0);
                        let mut names: Vec<String> =
                            path[from..].iter().map(|(n, _)| format!("`{n}`")).collect();
                        names.push(format!("`{callee}`"));
                        return Err(VerifyError::Cycle {
                            workflow: callee.to_string(),
                            path: names.join(" → "),
                        });
                    }
                    _ => {}
                }
            } else {
                mark.insert(node, 2);
                path.pop();
            }
        }
    }
    Ok(())
}

/// The riskiest step of `wf` that runs without approval (callees included),
/// memoised; `None` when every step is gated. Call cycles are refused before.
fn unattended_risk<'a>(
    wf: &'a Workflow,
    memo: &mut HashMap<&'a str, Option<Risk>>,
) -> Option<Risk> {
    if let Some(r) = memo.get(wf.name.as_str()) {
        return *r;
    }
    let mut worst = None;
    for s in wf.steps.iter().filter(|s| s.approval.is_none()) {
        worst = worst.max(Some(s.risk));
    }
    memo.insert(&wf.name, worst);
    worst
}

fn gates<'a>(
    p: &'a Program,
    wf: &'a Workflow,
    memo: &mut HashMap<&'a str, Option<Risk>>,
) -> Result<(), VerifyError> {
    for s in &wf.steps {
        let understated = |why: String| VerifyError::Understated {
            workflow: wf.name.clone(),
            step: s.name.clone(),
            risk: s.risk,
            why,
        };
        match (&s.kind, &s.call) {
            (StepKind::Tool, Call::Tool { tool, .. }) => {
                if let Some(t) = p.tools.get(tool)
                    && t.risk > s.risk
                {
                    return Err(understated(format!(
                        "its tool `{tool}` is declared `{:?}`",
                        t.risk
                    )));
                }
            }
            (StepKind::Workflow, Call::Workflow { workflow, .. }) => {
                if let Some(callee) = p.workflows.get(workflow)
                    && let Some(r) = unattended_risk(callee, memo)
                    && r > s.risk
                {
                    return Err(understated(format!(
                        "workflow `{workflow}` runs a `{r:?}` step without approval"
                    )));
                }
            }
            (StepKind::Llm, Call::Llm { agent: Some(a), .. }) => {
                for t in &a.tools {
                    let declared = p.tools.get(&t.tool).map_or(t.risk, |d| d.risk.max(t.risk));
                    if declared > s.risk {
                        return Err(understated(format!("its agent may call `{}`, declared `{declared:?}`", t.tool)));
                    }
                }
            }
            (StepKind::Llm, Call::Llm { .. }) => {}
            _ => {
                return Err(VerifyError::Missing {
                    place: format!("workflow `{}`, step `{}`", wf.name, s.name),
                    what: "call of its kind",
                    name: format!("{:?}", s.kind),
                });
            }
        }
        if s.approval.is_none() && (s.risk > wf.risk || s.risk == Risk::Critical) {
            return Err(VerifyError::Ungated {
                workflow: wf.name.clone(),
                step: s.name.clone(),
                risk: s.risk,
                ceiling: wf.risk,
            });
        }
    }
    Ok(())
}
