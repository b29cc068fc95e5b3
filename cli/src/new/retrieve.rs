//! Retrieval: the few tools of the catalog relevant to an intent, picked
//! before any model is asked (by the words of their names, signatures and
//! doc comments). A small model plans poorly, so this step carries most of
//! the weight: it reads the intent clause by clause (a request of several
//! sentences asks for several things), keeps the best tools of each clause,
//! settles twins (two toolkits offering the same method), and completes
//! what the catalog says a picked tool needs (the producer of an id it
//! takes; the create/save calls of a toolkit that works on one open file).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::catalog::CatalogTool;

/// Words too common to tell tools apart.
const STOP: &[&str] = &[
    "a", "an", "the", "of", "to", "and", "or", "in", "on", "for", "with", "is", "it", "its", "be", "by", "as", "at",
    "from", "this", "that", "these", "those", "i", "me", "my", "you", "your", "can", "could", "would", "please",
    "then", "also", "any", "all", "some", "what", "which", "will", "get", "given", "must", "format", "id", "ids",
    "function", "retrieves", "returns", "json", "object", "parameters", "optional", "we", "us", "our", "want", "like",
    "need", "let", "know", "tell", "do", "does", "are", "was", "were", "have", "has", "into", "about", "if", "so",
    "new", "first", "second", "third", "each", "every", "next", "one", "two", "three", "up", "out", "there", "other",
    "more", "much", "how", "many",
];

/// Everyday words for what tool docs say more formally: each pair adds the
/// second word to an intent that has the first. Kept generic: words people
/// use for maps, mail, files, slides, films, stocks, papers and time.
const ALIASES: &[(&str, &str)] = &[
    ("where", "coordinates"),
    ("position", "coordinates"),
    ("location", "coordinates"),
    ("table", "sql"),
    ("table", "query"),
    ("database", "sql"),
    ("database", "query"),
    ("row", "sql"),
    ("far", "distance"),
    ("ground", "distance"),
    ("mail", "email"),
    ("inbox", "email"),
    ("slide", "ppt"),
    ("presentation", "ppt"),
    ("powerpoint", "ppt"),
    ("week", "weekday"),
    ("clock", "time"),
    ("now", "time"),
    ("current", "curr"),
    ("date", "time"),
    ("stock", "ticker"),
    ("company", "ticker"),
    ("share", "ticker"),
    ("paper", "arxiv"),
    ("article", "arxiv"),
    ("publication", "article"),
    ("publication", "arxiv"),
    ("research", "arxiv"),
    ("online", "google"),
    ("web", "google"),
    ("internet", "google"),
    ("film", "movie"),
    ("cinema", "movie"),
    ("theater", "playing"),
    ("theatre", "playing"),
    ("screen", "playing"),
    ("latest", "recent"),
    ("book", "reserve"),
    ("room", "meeting"),
    ("near", "nearby"),
    ("around", "nearby"),
    ("close", "nearby"),
    ("direction", "route"),
    ("accommodation", "property"),
    ("rental", "property"),
    ("lodging", "property"),
    ("stay", "property"),
    ("apartment", "property"),
    ("temperature", "weather"),
    ("note", "write"),
    ("record", "write"),
    ("document", "file"),
];

fn stem(w: &str) -> String {
    for suffix in ["ing", "ies", "es", "s", "ed"] {
        if let Some(base) = w.strip_suffix(suffix)
            && base.len() >= 3
        {
            return base.to_string();
        }
    }
    w.to_string()
}

/// Lowercased, stemmed words, camelCase and snake_case split.
pub fn words(text: &str) -> Vec<String> {
    let mut spaced = String::with_capacity(text.len() + 8);
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_uppercase() && prev_lower {
            spaced.push(' ');
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        spaced.push(c);
    }
    spaced
        .to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty() && !STOP.contains(w))
        .map(stem)
        .collect()
}

/// The clauses of an intent: its sentences, and the parts of a sentence
/// joined by "then" or "after that".
pub fn clauses(intent: &str) -> Vec<String> {
    let mut sentences = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = intent.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        cur.push(*c);
        if matches!(c, '.' | '?' | '!' | ';') && chars.get(i + 1).is_some_and(|n| n.is_whitespace()) {
            sentences.push(std::mem::take(&mut cur));
        }
    }
    sentences.push(cur);
    const JOINS: &[&str] = &[", and then ", ", then ", " and then ", " after that "];
    let mut out = Vec::new();
    for s in sentences {
        let mut parts = vec![s];
        for j in JOINS {
            parts = parts.iter().flat_map(|p| p.split(j).map(str::to_string).collect::<Vec<_>>()).collect();
        }
        out.extend(parts.into_iter().map(|p| p.trim().to_string()).filter(|p| !words(p).is_empty()));
    }
    // A request of one sentence packs its actions into "and": "find a free
    // room and book it" (each side at least two words).
    if let [one] = out.as_slice() {
        let mut split: Vec<String> = Vec::new();
        for part in one.split(" and ") {
            match split.last_mut() {
                Some(cur) if cur.split_whitespace().count() < 2 || part.split_whitespace().count() < 2 => {
                    cur.push_str(" and ");
                    cur.push_str(part);
                }
                _ => split.push(part.to_string()),
            }
        }
        return split;
    }
    out
}

/// A tool and how well it matches an intent.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    pub tool: usize,
    pub score: f64,
}

/// Below this, the best match is a coincidence of one common word.
pub const MIN_SCORE: f64 = 3.0;
/// A clause whose best tool scores less asks for nothing in the catalog.
pub const MIN_CLAUSE_SCORE: f64 = 4.0;
/// The bar for the clauses of a one-sentence request ("… and reserve it").
pub const MIN_SHORT_CLAUSE_SCORE: f64 = 2.5;
/// A clause keeps the tools within this share of its best one.
pub const CLAUSE_SHARE: f64 = 0.9;
/// When `--with` files bring tools, the standard library's weigh this much
/// (the user's own tools are the ones meant).
const STD_WEIGHT: f64 = 0.7;
/// Field weights: a word of the tool's name, of its doc's first paragraph,
/// of the rest of its doc (parameters and result fields).
const W_NAME: f64 = 2.0;
const W_SUMMARY: f64 = 1.0;
const W_DOC: f64 = 0.3;
/// BM25's term-frequency saturation.
const K1: f64 = 1.2;

/// Ranks tools against an intent: BM25-style idf-weighted word overlap over
/// the fields of each tool, with the field weights as term frequency.
pub struct Retriever<'a> {
    tools: &'a [CatalogTool],
    names: Vec<HashSet<String>>,
    summaries: Vec<HashSet<String>>,
    docs: Vec<HashSet<String>>,
    idf: HashMap<String, f64>,
    std_weight: f64,
}

/// `Toolkit.method` → `Toolkit`.
fn kit(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |(k, _)| k)
}

/// `Toolkit.method` → `method`, singular (twins across toolkits compare by it).
fn method(name: &str) -> String {
    let m = name.rsplit_once('.').map_or(name, |(_, m)| m);
    m.strip_suffix('s').filter(|b| b.ends_with("coordinate")).unwrap_or(m).to_string()
}

fn is_id(param: &str) -> bool {
    param.len() > 2 && param.to_ascii_lowercase().ends_with("id")
}

impl<'a> Retriever<'a> {
    pub fn new(tools: &'a [CatalogTool]) -> Retriever<'a> {
        let mut names = Vec::new();
        let mut summaries = Vec::new();
        let mut docs = Vec::new();
        let mut df: BTreeMap<String, usize> = BTreeMap::new();
        for t in tools {
            let n: HashSet<String> = words(&t.name.replace('.', " ")).into_iter().collect();
            let s: HashSet<String> = words(&t.summary()).into_iter().collect();
            let d: HashSet<String> = words(&t.doc).into_iter().chain(t.params.iter().flat_map(|p| words(&p.name))).collect();
            for w in n.iter().chain(&s).chain(&d).collect::<HashSet<_>>() {
                *df.entry(w.clone()).or_default() += 1;
            }
            names.push(n);
            summaries.push(s);
            docs.push(d);
        }
        let total = tools.len() as f64;
        let idf = df.into_iter().map(|(w, n)| (w, ((total + 1.0) / (n as f64 + 0.5)).ln())).collect();
        let std_weight = if tools.iter().any(|t| t.std_module.is_none()) { STD_WEIGHT } else { 1.0 };
        Retriever { tools, names, summaries, docs, idf, std_weight }
    }

    fn intent_words(intent: &str) -> HashSet<String> {
        let mut set: HashSet<String> = words(intent).into_iter().collect();
        for (from, to) in ALIASES {
            if set.contains(&stem(from)) {
                set.insert(stem(to));
            }
        }
        set
    }

    /// Every tool with a positive score, best first (ties by catalog order).
    pub fn rank(&self, intent: &str) -> Vec<Scored> {
        let it = Self::intent_words(intent);
        let mut out: Vec<Scored> = (0..self.names.len())
            .map(|i| {
                let mut score = 0.0;
                for w in &it {
                    let tf = W_NAME * f64::from(u8::from(self.names[i].contains(w)))
                        + W_SUMMARY * f64::from(u8::from(self.summaries[i].contains(w)))
                        + W_DOC * f64::from(u8::from(self.docs[i].contains(w)));
                    if tf > 0.0 {
                        score += self.idf.get(w).copied().unwrap_or(0.0) * tf * (K1 + 1.0) / (tf + K1);
                    }
                }
                if self.tools[i].std_module.is_some() {
                    score *= self.std_weight;
                }
                Scored { tool: i, score }
            })
            .filter(|s| s.score > 0.0)
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.tool.cmp(&b.tool)));
        out
    }

    /// The tools scoring at least `min_share` of the best one, at most
    /// `max`. Empty when nothing in the catalog shares a meaningful word
    /// with the intent.
    pub fn shortlist(&self, intent: &str, min_share: f64, max: usize) -> Vec<Scored> {
        let ranked = self.rank(intent);
        let Some(best) = ranked.first().map(|s| s.score) else { return Vec::new() };
        if best < MIN_SCORE {
            return Vec::new();
        }
        ranked.into_iter().filter(|s| s.score >= min_share * best).take(max).collect()
    }

    /// The tools an intent needs, in the order its clauses ask for them
    /// (indices into the catalog, at most `max`). Empty when nothing in
    /// the catalog fits.
    pub fn pick(&self, intent: &str, max: usize) -> Vec<usize> {
        let whole = self.rank(intent);
        if whole.first().is_none_or(|s| s.score < MIN_SCORE) {
            return Vec::new();
        }
        let whole_score: HashMap<usize, f64> = whole.iter().map(|s| (s.tool, s.score)).collect();
        let mut kit_score: HashMap<&str, f64> = HashMap::new();
        for s in &whole {
            *kit_score.entry(kit(&self.tools[s.tool].name)).or_default() += s.score;
        }
        let mut chosen: Vec<usize> = Vec::new();
        let parts = clauses(intent);
        // The clauses of a one-sentence request are short: a lower bar.
        let min_clause = if intent.split_inclusive(['.', '?', '!', ';']).filter(|s| !words(s).is_empty()).count() <= 1 { MIN_SHORT_CLAUSE_SCORE } else { MIN_CLAUSE_SCORE };
        for clause in parts {
            let ranked = self.rank(&clause);
            let Some(top) = ranked.first().map(|s| s.score) else { continue };
            if top < min_clause {
                continue;
            }
            // Twins within a clause: the better-ranked one speaks for both.
            let mut seen = HashSet::new();
            for s in ranked.iter().filter(|s| seen.insert(method(&self.tools[s.tool].name))) {
                if s.score < CLAUSE_SHARE * top {
                    break;
                }
                if !chosen.contains(&s.tool) {
                    chosen.push(s.tool);
                }
            }
        }
        // Twins across clauses: keep the one of the toolkit the whole
        // intent leans to.
        let mut by_method: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for &i in &chosen {
            by_method.entry(method(&self.tools[i].name)).or_default().push(i);
        }
        let mut drop = HashSet::new();
        for group in by_method.values().filter(|g| g.len() > 1) {
            let keep = group.iter().copied().max_by(|a, b| {
                let ka = kit_score.get(kit(&self.tools[*a].name)).copied().unwrap_or(0.0);
                let kb = kit_score.get(kit(&self.tools[*b].name)).copied().unwrap_or(0.0);
                ka.total_cmp(&kb).then(b.cmp(a))
            });
            drop.extend(group.iter().copied().filter(|i| Some(*i) != keep));
        }
        chosen.retain(|i| !drop.contains(i));
        self.complete(&mut chosen, &whole_score);
        chosen.truncate(max);
        chosen
    }

    fn takes_an_id(&self, i: usize) -> bool {
        self.tools[i].params.iter().any(|p| is_id(&p.name))
    }

    /// Adds what the catalog says the chosen tools need: a tool that takes a
    /// required id gets a producer of it from its toolkit (one whose result
    /// has that field, else one that takes no id), unless one is chosen; a
    /// toolkit with `create…` and `save…` methods is opened before and
    /// saved after its other calls.
    fn complete(&self, chosen: &mut Vec<usize>, whole_score: &HashMap<usize, f64>) {
        let score = |j: usize| whole_score.get(&j).copied().unwrap_or(0.0);
        for i in chosen.clone() {
            let name = &self.tools[i].name;
            for p in self.tools[i].params.iter().filter(|p| !p.optional() && is_id(&p.name)) {
                let same_kit: Vec<usize> =
                    (0..self.tools.len()).filter(|&j| j != i && kit(&self.tools[j].name) == kit(name)).collect();
                if same_kit.iter().any(|j| chosen.contains(j) && !self.takes_an_id(*j)) {
                    continue;
                }
                let mut producers: Vec<usize> =
                    same_kit.iter().copied().filter(|&j| self.tools[j].result_fields().contains(&p.name)).collect();
                if producers.is_empty() {
                    producers = same_kit.iter().copied().filter(|&j| !self.takes_an_id(j)).collect();
                }
                let fit = |j: usize| self.tools[j].produces(&self.tools[i], &p.name).map_or(0, |(_, s)| s);
                let best = producers.into_iter().max_by(|a, b| fit(*a).cmp(&fit(*b)).then(score(*a).total_cmp(&score(*b))).then(b.cmp(a)));
                if let Some(b) = best
                    && !chosen.contains(&b)
                    && let Some(at) = chosen.iter().position(|c| *c == i)
                {
                    chosen.insert(at, b);
                }
            }
        }
        // A producer the clauses asked for later moves before its consumer.
        for i in chosen.clone() {
            let name = self.tools[i].name.clone();
            for p in self.tools[i].params.iter().filter(|p| !p.optional() && is_id(&p.name)) {
                let Some(at) = chosen.iter().position(|c| *c == i) else { continue };
                let kin = |j: &usize| kit(&self.tools[*j].name) == kit(&name) && !self.takes_an_id(*j);
                // How well a tool's result answers the id (a field that lists ids).
                let fit = |j: usize| self.tools[j].produces(&self.tools[i], &p.name).map_or(0, |(_, s)| s);
                let best_before = chosen[..at].iter().copied().filter(kin).map(fit).max();
                // The best producer asked for later; the first of equals.
                let mover = chosen[at + 1..].iter().copied().filter(kin).fold(None, |acc: Option<usize>, j| match acc {
                    Some(a) if fit(a) >= fit(j) => Some(a),
                    _ => Some(j),
                });
                if let Some(m) = mover
                    && best_before.is_none_or(|b| fit(m) > b)
                {
                    chosen.retain(|c| *c != m);
                    chosen.insert(at, m);
                }
            }
        }
        let kits: Vec<String> = {
            let mut k: Vec<String> = chosen.iter().map(|i| kit(&self.tools[*i].name).to_string()).collect();
            k.dedup();
            k.sort();
            k.dedup();
            k
        };
        for k in kits {
            let in_kit = |prefix: &str| {
                (0..self.tools.len()).find(|&j| {
                    kit(&self.tools[j].name) == k && self.tools[j].name.rsplit_once('.').is_some_and(|(_, m)| m.starts_with(prefix))
                })
            };
            let (Some(create), Some(save)) = (in_kit("create"), in_kit("save")) else { continue };
            if !chosen.contains(&create)
                && let Some(first) = chosen.iter().position(|c| kit(&self.tools[*c].name) == k)
            {
                chosen.insert(first, create);
            }
            if !chosen.contains(&save) {
                chosen.push(save);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::new::catalog::{ToolParam, Ty};

    fn tool(name: &str, doc: &str) -> CatalogTool {
        CatalogTool { name: name.into(), params: vec![], doc: doc.into(), std_module: None }
    }

    fn with_param(mut t: CatalogTool, p: &str, ty: Ty) -> CatalogTool {
        t.params.push(ToolParam { name: p.into(), ty, has_default: false });
        t
    }

    #[test]
    fn words_split_case_and_stem() {
        assert_eq!(words("getCurrentWeather of Rooms"), vec!["current", "weather", "room"]);
    }

    #[test]
    fn clauses_split_sentences_and_then() {
        assert_eq!(
            clauses("Find a room. Book it, then email Bob? Thanks"),
            vec!["Find a room.", "Book it", "email Bob?", "Thanks"]
        );
    }

    #[test]
    fn the_tool_named_by_the_intent_ranks_first() {
        let tools = vec![
            tool("Weather.get_weather_today", "Today's weather of a city."),
            tool("Email.send", "Sends an email to a recipient."),
            tool("Email.show", "Shows the emails in the inbox."),
        ];
        let r = Retriever::new(&tools);
        let ranked = r.rank("Please send an email to Bob about the weather");
        assert_eq!(ranked[0].tool, 1);
        assert!(r.shortlist("Bake me a cake", 0.5, 5).is_empty());
        assert!(r.pick("Bake me a cake", 5).is_empty());
    }

    fn films() -> Vec<CatalogTool> {
        vec![
            tool("Films.popular_movies", "Lists the popular movies.\n\nReturns a JSON object with:\n- films: the films"),
            with_param(
                tool("Films.movie_reviews", "The reviews of a movie.\n\nReturns a JSON object with:\n- reviews: reviews"),
                "movie_id",
                Ty::Int,
            ),
            tool("Weather.forecast_weather", "The weather forecast of a city for some days."),
            tool("Slides.create_file", "Creates a slide deck file."),
            with_param(tool("Slides.add_text_page", "Adds a page of text to the slide deck."), "title", Ty::Str),
            tool("Slides.save_file", "Saves the slide deck."),
        ]
    }

    #[test]
    fn each_clause_gets_its_tool_and_an_id_gets_its_producer() {
        let tools = films();
        let r = Retriever::new(&tools);
        let picked: Vec<&str> =
            r.pick("Read me the reviews of a movie. Also, what is the weather forecast for Paris?", 8).into_iter().map(|i| tools[i].name.as_str()).collect();
        assert_eq!(picked, vec!["Films.popular_movies", "Films.movie_reviews", "Weather.forecast_weather"]);
    }

    #[test]
    fn a_file_toolkit_is_created_and_saved_around_its_calls() {
        let tools = films();
        let r = Retriever::new(&tools);
        let picked: Vec<&str> =
            r.pick("Add a text page about the weather forecast to the slide deck.", 8).into_iter().map(|i| tools[i].name.as_str()).collect();
        assert_eq!(picked.first(), Some(&"Slides.create_file"));
        assert_eq!(picked.last(), Some(&"Slides.save_file"));
        assert!(picked.contains(&"Slides.add_text_page"));
    }

    #[test]
    fn twins_across_toolkits_keep_one() {
        let mut tools = vec![
            tool("MapA.get_distance", "The driving distance between places on the map."),
            tool("MapB.get_distance", "The driving distance between places on the map."),
        ];
        tools.extend(films());
        let r = Retriever::new(&tools);
        assert_eq!(r.pick("The driving distance between places on the map: Rome to Milan.", 8), vec![0]);
    }

    fn stdlib() -> Vec<CatalogTool> {
        let files: Vec<(aos_compiler::ast::File, Option<String>)> = aos_compiler::stdlib::MODULES
            .iter()
            .map(|(name, text)| (aos_compiler::parse(text, aos_compiler::FileId(0)).0, Some((*name).to_string())))
            .collect();
        crate::new::catalog::tools_of(&files)
    }

    #[test]
    fn a_one_sentence_request_is_read_action_by_action() {
        let tools = stdlib();
        let r = Retriever::new(&tools);
        let intent = "Every Monday, summarize last week's EMEA sales from the sales table and email the summary to the sales lead after approval";
        let picked: Vec<&str> = r.pick(intent, 8).into_iter().map(|i| tools[i].name.as_str()).collect();
        let clauses_seen: Vec<(String, Vec<(String, f64)>)> = clauses(intent)
            .into_iter()
            .map(|c| {
                let ranked = r.rank(&c).into_iter().take(3).map(|s| (tools[s.tool].name.clone(), s.score)).collect();
                (c, ranked)
            })
            .collect();
        assert_eq!(picked.first(), Some(&"sql.query"), "{picked:?} {clauses_seen:?}");
        assert!(picked.contains(&"email.send"), "{picked:?}");
        let mut rooms = vec![
            tool("Rooms.get_empty_room", "Finds the meeting rooms free between two times.\n\nReturns a JSON object with:\n- rooms: the free rooms"),
            with_param(tool("Rooms.reserve", "Reserves (books) a meeting room for a time slot."), "room_id", Ty::Str),
        ];
        rooms.extend(stdlib().into_iter().map(|mut t| {
            t.std_module = t.std_module.or(Some("std".into()));
            t
        }));
        let r = Retriever::new(&rooms);
        let picked: Vec<&str> =
            r.pick("Find a free meeting room from 2pm to 4pm and reserve it", 8).into_iter().map(|i| rooms[i].name.as_str()).collect();
        let seen: Vec<(String, Vec<(String, f64)>)> = clauses("Find a free meeting room from 2pm to 4pm and reserve it")
            .into_iter()
            .map(|c| {
                let ranked = r.rank(&c).into_iter().take(3).map(|s| (rooms[s.tool].name.clone(), s.score)).collect();
                (c, ranked)
            })
            .collect();
        assert_eq!(picked, vec!["Rooms.get_empty_room", "Rooms.reserve"], "{seen:?}");
    }
}
