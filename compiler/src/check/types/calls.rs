//! Calls of tools and workflows: arguments against parameters, and where a
//! value goes (`Sink`).

use super::*;

impl<'a> Walker<'_, '_, 'a, '_> {
    /// A tool or workflow call made by a step; returns its value type.
    pub(super) fn call(&mut self, callee: &[ast::Ident], args: &[ast::Arg], span: Span) -> Ty {
        let env = self.env();
        let Some(last) = callee.last() else { return Ty::Unknown };
        let path_span = callee.iter().map(|i| i.span).fold(last.span, Span::join);
        let name = Env::tool_name(callee);
        if let [one] = callee {
            if PURE_BUILTINS.contains(&one.name.as_str()) || CONSTRUCTORS.contains(&one.name.as_str()) {
                self.args_only(args);
                self.push(
                    Diagnostic::error(Code::E0201, self.file, path_span, format!("`{name}` is a built-in function, not a step's call"))
                        .with_primary_label("a step must call a tool, a workflow or a model")
                        .with_help(format!("use `{name}(…)` inside an expression, e.g. in a prompt: \"{{{name}(…)}}\"")),
                );
                return Ty::Unknown;
            }
            let Some(wf) = env.workflows.get(&one.name) else {
                self.args_only(args);
                let mut d = Diagnostic::error(Code::E0101, self.file, path_span, format!("unknown workflow `{name}`"))
                    .with_primary_label("no workflow of this name");
                if let Some(h) = suggest::did_you_mean(&name, env.workflows.keys().map(String::as_str)) {
                    d = d.with_help(h);
                }
                self.push(d);
                return Ty::Unknown;
            };
            let kind = format!("workflow `{name}`");
            self.args(&kind, &name, &wf.decl.params, wf.file, args, path_span, span);
            return self.cx.call_result(callee);
        }
        let Some(tool) = env.tools.get(&name) else {
            self.args_only(args);
            let mut d = Diagnostic::error(Code::E0103, self.file, path_span, format!("unknown tool `{name}`"))
                .with_primary_label("no tool of this name is visible");
            if let Some(module) = env.unused_std_tools.get(&name) {
                d = d.with_help(format!("`{name}` is in the standard library: add `use std.{module}`"));
            } else if let Some(h) = suggest::did_you_mean(&name, env.tools.keys().map(String::as_str)) {
                d = d.with_help(h);
            } else if let Some(near) = suggest::closest(&name, env.unused_std_tools.keys().map(String::as_str)) {
                let module = env.unused_std_tools.get(near).copied().unwrap_or("");
                d = d.with_help(format!("did you mean `{near}`? it is in the standard library: add `use std.{module}`"));
            }
            self.push(d);
            return Ty::Unknown;
        };
        let kind = format!("tool `{name}`");
        self.args(&kind, &name, &tool.decl.params, tool.file, args, path_span, span);
        self.cx.call_result(callee)
    }

    /// Type the values of arguments whose callee is unknown (for names).
    pub(super) fn args_only(&mut self, args: &[ast::Arg]) {
        for a in args {
            let _ = self.expr(&a.value);
        }
    }

    /// Named arguments against parameters (E0202), each value against its
    /// parameter's type.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn args(
        &mut self,
        kind: &str,
        callee: &str,
        params: &[ast::Param],
        decl_file: FileId,
        args: &[ast::Arg],
        path_span: Span,
        _call_span: Span,
    ) {
        let mut given: FxHashMap<&str, Span> = FxHashMap::default();
        let names: Vec<&str> = params.iter().map(|p| p.name.name.as_str()).collect();
        for a in args {
            let t = self.expr(&a.value);
            let Some(name) = &a.name else {
                let d = Diagnostic::error(Code::E0202, self.file, a.span, format!("the arguments of {kind} must be named"))
                    .with_primary_label("positional argument")
                    .with_help(format!("write `name: value`; the parameters are {}", list_names(&names)));
                self.push(d);
                continue;
            };
            if let Some(first) = given.get(name.name.as_str()) {
                let d = Diagnostic::error(Code::E0202, self.file, name.span, format!("argument `{}` is given twice", name.name))
                    .with_primary_label("given again here")
                    .with_label(self.file, *first, "first given here");
                self.push(d);
                continue;
            }
            given.insert(&name.name, name.span);
            let Some(p) = params.iter().find(|p| p.name.name == name.name) else {
                let mut d = Diagnostic::error(Code::E0202, self.file, name.span, format!("{kind} has no parameter `{}`", name.name))
                    .with_primary_label("unknown argument");
                d = match suggest::closest(&name.name, names.iter().copied()) {
                    Some(near) => d.with_help(format!("did you mean `{near}`?")),
                    None if names.is_empty() => d.with_help(format!("{kind} takes no arguments")),
                    None => d.with_help(format!("the parameters are {}", list_names(&names))),
                };
                self.push(d);
                continue;
            };
            let expected = self.cx.resolve(&p.ty);
            self.expect(&t, &expected, a.value.span, &Sink::Param { callee, param: &p.name.name });
        }
        // A positional argument or a misspelt name already has its
        // diagnostic; the parameter it was meant for is not "missing" too.
        if args.iter().any(|a| a.name.is_none()) {
            return;
        }
        let misspelt: Vec<&str> = args
            .iter()
            .filter_map(|a| a.name.as_ref())
            .filter(|n| !names.contains(&n.name.as_str()))
            .filter_map(|n| suggest::closest(&n.name, names.iter().copied()))
            .collect();
        let missing: Vec<&ast::Param> = params
            .iter()
            .filter(|p| {
                !given.contains_key(p.name.name.as_str())
                    && !misspelt.contains(&p.name.name.as_str())
                    && p.default.is_none()
                    && !matches!(p.ty.kind, ast::TypeExprKind::Optional(_))
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        let list: Vec<&str> = missing.iter().map(|p| p.name.name.as_str()).collect();
        let msg = if let [one] = list.as_slice() {
            format!("missing argument `{one}` in the call of {kind}")
        } else {
            format!("missing arguments {} in the call of {kind}", list_names(&list))
        };
        let mut d = Diagnostic::error(Code::E0202, self.file, path_span, msg).with_primary_label("called here");
        for p in &missing {
            d = d.with_label(decl_file, p.name.span, format!("`{}` is declared here", p.name.name));
        }
        let example: Vec<String> = missing.iter().map(|p| format!("`{}: …`", p.name.name)).collect();
        d = d.with_help(format!("add {}", example.join(", ")));
        self.push(d);
    }

    /// Report whatever keeps a `found` value from going where `expected`
    /// is needed.
    pub(super) fn expect(&mut self, found: &Ty, expected: &Ty, span: Span, sink: &Sink) {
        if found.contains_secret() && !expected.contains_secret() && *expected != Ty::Unknown {
            self.leak(span, sink);
            return;
        }
        if assignable(found, expected) {
            return;
        }
        if let Ty::Optional(inner) = found
            && assignable(inner, expected) {
                let d = Diagnostic::error(Code::E0203, self.file, span, format!("{}, but this may be null", sink.expects(expected)))
                    .with_primary_label(format!("this is `{found}`"))
                    .with_help("give a default with `??` (`value ?? fallback`), or remove the `when:` that makes it optional");
                self.push(d);
                return;
            }
        let d = Diagnostic::error(Code::E0201, self.file, span, format!("{}, found `{found}`", sink.expects(expected)))
            .with_primary_label(format!("this is `{found}`"));
        self.push(d);
    }

    pub(super) fn leak(&mut self, span: Span, sink: &Sink) {
        let d = Diagnostic::error(Code::E0701, self.file, span, sink.leak())
            .with_primary_label("this is a `Secret`")
            .with_help("a secret may only be passed to a tool parameter declared `Secret`; the runtime resolves it there");
        self.push(d);
    }
}
