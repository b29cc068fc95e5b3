use super::*;
use crate::new::catalog::{CatalogTool, ToolParam, Ty};
use crate::new::plan::{PlanArg, PlanStep};

fn p(name: &str, ty: Ty) -> ToolParam {
    ToolParam { name: name.into(), ty, has_default: false }
}

fn catalog() -> Vec<CatalogTool> {
    vec![
        CatalogTool {
            name: "Rooms.find_free".into(),
            params: vec![p("start", Ty::Str), p("end", Ty::Optional(Box::new(Ty::Str)))],
            doc: "Finds free rooms.\n\nReturns a JSON object with:\n- rooms: the free rooms".into(),
            std_module: None,
        },
        CatalogTool {
            name: "Rooms.reserve".into(),
            params: vec![p("room_id", Ty::Str), p("hours", Ty::Int)],
            doc: "Books a room.".into(),
            std_module: None,
        },
        CatalogTool {
            name: "email.send".into(),
            params: vec![p("to", Ty::Str), p("subject", Ty::Str), p("body", Ty::Str)],
            doc: "Sends one email.".into(),
            std_module: Some("email".into()),
        },
    ]
}

fn step(tool: &str, args: &[(&str, &str)]) -> PlanStep {
    PlanStep { tool: tool.into(), args: args.iter().map(|(n, v)| PlanArg { name: (*n).into(), value: (*v).into() }).collect() }
}

fn setting<'a>(catalog: &'a [CatalogTool], uses: &'a [String]) -> Setting<'a> {
    Setting { intent: "Book a free room from 2pm and mail Bob", uses, writer_role: None, catalog }
}

#[test]
fn a_plan_lowers_to_wired_steps() {
    let cat = catalog();
    let uses = vec!["./rooms.aos".to_string()];
    let plan = Plan {
        steps: vec![
            step("Rooms.find_free", &[("start", "14:00")]),
            step("Rooms.reserve", &[("room_id", "step1.rooms[0]"), ("hours", "2")]),
            step("email.send", &[("to", "bob@example.com"), ("subject", "Booked {room}")]),
        ],
    };
    let gates = Gates { approval: [("send".to_string(), "owner".to_string())].into(), budget_usd: Some(0.05), ..Gates::default() };
    let out = lower(&plan, &setting(&cat, &uses), &gates);
    insta::assert_snapshot!(out.text);
    assert_eq!(out.workflow, "book_free_room_from");
    let names: Vec<&str> = out.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["find_free", "reserve", "body_text", "send"]);
    assert!(out.inputs.is_empty());
}

#[test]
fn lowering_is_deterministic() {
    let cat = catalog();
    let plan = Plan { steps: vec![step("Rooms.reserve", &[]), step("Rooms.reserve", &[("hours", "x")])] };
    let a = lower(&plan, &setting(&cat, &[]), &Gates::default());
    let b = lower(&plan, &setting(&cat, &[]), &Gates::default());
    assert_eq!(a, b);
    // Missing values become inputs; the second call takes the first's result
    // for its id; a value that does not fit the type stays a string for the
    // checker to report.
    assert_eq!(a.inputs, ["room_id", "hours"]);
    assert!(a.text.contains("step reserve_2 = Rooms.reserve(hours: \"x\", room_id: reserve)"), "{}", a.text);
}

#[test]
fn literals_follow_the_parameter_type() {
    assert_eq!(literal("42", &Ty::Int), "42");
    assert_eq!(literal("4.5", &Ty::Optional(Box::new(Ty::Float))), "4.5");
    assert_eq!(literal("3", &Ty::Float), "3.0");
    assert_eq!(literal("yes", &Ty::Bool), "true");
    assert_eq!(literal("[\"EMEA\", 3]", &Ty::List(Box::new(Ty::Json))), "[\"EMEA\", 3]");
    assert_eq!(literal("EMEA", &Ty::List(Box::new(Ty::Json))), "[\"EMEA\"]");
    assert_eq!(literal("a {b} \"c\"", &Ty::Str), r#""a \{b\} \"c\"""#);
}

#[test]
fn references_only_point_backwards() {
    let earlier = vec!["find".to_string()];
    assert_eq!(reference("step1.rooms[0]", &earlier).as_deref(), Some("find.rooms[0]"));
    assert_eq!(reference("step2", &earlier), None);
    assert_eq!(reference("step0", &earlier), None);
    assert_eq!(reference("step1; drop", &earlier), None);
}

#[test]
fn identifiers_avoid_keywords_and_digits() {
    assert_eq!(ident("getWeather Today!", "s"), "get_weather_today");
    assert_eq!(ident("step", "s"), "s_step");
    assert_eq!(ident("3d", "s"), "s_3d");
    assert_eq!(ident("", "s"), "s");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text quoted is one string literal the compiler reads back as
        /// the same text.
        #[test]
        fn quoted_text_round_trips(s in "[ -~\n]{0,40}") {
            let src = format!("workflow w() {{\n  intent: {}\n  budget: $0.01\n}}\n", quote(&s));
            let analysis = aos_compiler::check("q.aos", &src, &aos_compiler::FsLoader);
            prop_assert!(!analysis.has_errors(), "{src}");
            let got = analysis.program.and_then(|p| p.workflows.get("w").and_then(|w| w.intent.clone()));
            let want = s.replace('\r', "");
            prop_assert_eq!(got.as_deref(), Some(want.as_str()));
        }
    }
}

#[test]
fn calls_on_one_open_file_keep_their_order() {
    let tool = |name: &str, params: Vec<ToolParam>| CatalogTool { name: name.into(), params, doc: String::new(), std_module: None };
    let cat = vec![
        tool("Slides.create_file", vec![p("theme", Ty::Str)]),
        tool("Slides.add_page", vec![p("title", Ty::Str)]),
        tool("Slides.save_file", vec![]),
        tool("Weather.today", vec![p("city", Ty::Str)]),
    ];
    let plan = Plan {
        steps: vec![
            step("Slides.create_file", &[("theme", "plain")]),
            step("Weather.today", &[("city", "Rome")]),
            step("Slides.add_page", &[("title", "Rome")]),
            step("Slides.save_file", &[]),
        ],
    };
    let out = lower(&plan, &setting(&cat, &[]), &Gates::default());
    assert!(out.text.contains("step add_page = Slides.add_page(title: \"Rome\") { after: [create_file] }"), "{}", out.text);
    assert!(out.text.contains("step save_file = Slides.save_file() { after: [add_page] }"), "{}", out.text);
    assert!(out.text.contains("step today = Weather.today(city: \"Rome\")\n"), "{}", out.text);
}

#[test]
fn an_earlier_result_field_fills_a_parameter_of_its_name_even_an_optional_one() {
    let tool = |name: &str, params: Vec<ToolParam>, doc: &str| CatalogTool { name: name.into(), params, doc: doc.into(), std_module: None };
    let opt = |name: &str, ty: Ty| p(name, Ty::Optional(Box::new(ty)));
    let cat = vec![
        tool("Map.get_coordinates", vec![p("location", Ty::Str)], "Coordinates.\n\nReturns a JSON object with:\n- latitude: lat\n- longitude: lon"),
        tool("Map.search_nearby", vec![p("search_term", Ty::Str), opt("latitude", Ty::Float), opt("longitude", Ty::Float), opt("radius", Ty::Int)], "Nearby."),
    ];
    let plan = Plan { steps: vec![step("Map.get_coordinates", &[("location", "Louvre")]), step("Map.search_nearby", &[("search_term", "cafe")])] };
    let out = lower(&plan, &setting(&cat, &[]), &Gates::default());
    // The optional radius no earlier result has stays out.
    assert!(
        out.text.contains("step search_nearby = Map.search_nearby(search_term: \"cafe\", latitude: coordinates.latitude, longitude: coordinates.longitude)"),
        "{}",
        out.text
    );
    assert_eq!(out.steps.len(), 2);
}
