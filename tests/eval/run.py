#!/usr/bin/env python3
"""The English-intent evaluation of `aosc new` (../shared/eval/README.md).

Usage:
  tests/eval/run.py AOSC RESULTS_DIR [--subset K] [--timeout S] [--eval DIR]
      runs `AOSC new INTENT --with teval_tools.aos -o RESULTS_DIR/ID.aos --json`
      for each intent (the planner sees the intent and the whole catalog of
      50 tools, never the item's tool list or its gold plan), writes
      RESULTS_DIR/ID.json ({"repair_rounds": N, "seconds": S, ...}), then
      runs the scorer.
  tests/eval/run.py AOSC RESULTS_DIR --baseline
      writes the word-overlap baseline instead: the catalog tools that share
      at least two content words with the intent (by their names and the
      first line of their docs), chained one after another; then scores.
  tests/eval/run.py AOSC RESULTS_DIR --retrieval-only
      runs `aosc new` against a scripted OpenAI-compatible server on
      loopback that answers every request with the tools the plan schema
      offers (aosc's shortlist), in order, without arguments: the retrieval
      step alone, through the real lowering and checker.
  tests/eval/run.py AOSC RESULTS_DIR --server URL --model ID
      plans with an OpenAI-compatible server (llama-cpp-python's, Ollama…):
      OPENAI_BASE_URL=URL, AOS_PLANNER_MODEL_ID=ID.

--score-only scores the items RESULTS_DIR has an ID.json for (a run stopped
early: items are planned every 4th first, so those are a spread of the set).
--subset K keeps every K-th item (items 0, K, 2K, … of public.jsonl): a
deterministic subset for slow models. The planner is whatever `aosc new`
picks from the environment (AOS_PLANNER_MODEL for the embedded model).
Python 3 standard library only.
"""
import argparse
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_EVAL = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "eval"))

STOP = set("""a an the of to and or in on for with is it its be by as at from this that these those i me my
you your can could would please then also any all some what which will get given must format id ids function
retrieves returns json object parameters optional we us our want like need let know tell do does are was were
have has into about if so given""".split())


def words(text):
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    out = set()
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        if w in STOP or len(w) < 3:
            continue
        for suf in ("ing", "ies", "es", "s", "ed"):
            if w.endswith(suf) and len(w) - len(suf) >= 3:
                w = w[: -len(suf)]
                break
        out.add(w)
    return out


TOOL_RE = re.compile(r"((?:///[^\n]*\n)*)tool ([\w.]+)\(([^)]*)\)", re.S)


def catalog(path):
    """[(name, [(param, type, optional)], first doc line)] in catalog order."""
    out = []
    for doc, name, params in TOOL_RE.findall(open(path, encoding="utf-8").read()):
        plist = []
        for p in params.split(","):
            p = p.strip()
            if p:
                pname, ty = (x.strip() for x in p.split(":", 1))
                plist.append((pname, ty.rstrip("?"), ty.endswith("?")))
        first = doc.split("\n")[0].lstrip("/ ").strip()
        out.append((name, plist, first))
    return out


def neutral(ty):
    return {"String": '""', "Int": "0", "Float": "0.0", "Bool": "false"}.get(ty, "null")


def string_lit(s):
    return '"' + "".join({"\\": "\\\\", '"': '\\"', "{": "\\{", "}": "\\}", "\n": "\\n"}.get(c, c) for c in s) + '"'


def baseline_program(item, cat):
    iw = words(item["intent"])
    picked = [(n, ps) for n, ps, first in cat if len(iw & (words(n.replace(".", " ").replace("_", " ")) | words(first))) >= 2]
    lines = [f"// Word-overlap baseline for {item['id']}.", 'use "./teval_tools.aos"', "",
             "workflow baseline() {", f"  intent: {string_lit(item['intent'])}", "  budget: $0.01", ""]
    for i, (name, ps) in enumerate(picked):
        args = ", ".join(f"{p}: {neutral(ty)}" for p, ty, opt in ps if not opt)
        after = f" {{ after: [t{i - 1}] }}" if i else ""
        lines.append(f"  step t{i} = {name}({args}){after}")
    if picked:
        lines += ["", "  return { " + ", ".join(f"t{i}: t{i}" for i in range(len(picked))) + " }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


class ShortlistServer(http.server.BaseHTTPRequestHandler):
    """OpenAI chat completions: the plan is the schema's tool enum, in order."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
        try:
            tools = schema["properties"]["steps"]["items"]["properties"]["tool"]["enum"]
        except (KeyError, TypeError):
            tools = []
        content = json.dumps({"steps": [{"tool": t, "args": []} for t in tools]})
        reply = json.dumps({"id": "chatcmpl-shortlist", "object": "chat.completion", "created": int(time.time()),
                            "model": body.get("model", ""),
                            "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": content}}],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("aosc")
    ap.add_argument("results")
    ap.add_argument("--eval", default=os.environ.get("AOS_EVAL_DIR", DEFAULT_EVAL))
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--subset", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--retrieval-only", action="store_true")
    ap.add_argument("--server")
    ap.add_argument("--model")
    ap.add_argument("--score-only", action="store_true")
    a = ap.parse_args()
    env = dict(os.environ)
    if a.retrieval_only:
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ShortlistServer)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        a.server, a.model = f"http://127.0.0.1:{httpd.server_address[1]}/v1", "shortlist"
    if a.server:
        for k in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "AOS_PLANNER_MODEL"):
            env.pop(k, None)
        env.update({"OPENAI_API_KEY": env.get("OPENAI_API_KEY") or "sk-local", "OPENAI_BASE_URL": a.server,
                    "AOS_PLANNER_MODEL_ID": a.model or "default"})
    dataset = os.path.join(a.eval, "intents", "public.jsonl")
    cat_path = os.path.join(a.eval, "intents", "teval_tools.aos")
    items = [json.loads(l) for l in open(dataset, encoding="utf-8") if l.strip()]
    items = items[:: max(1, a.subset)]
    if a.score_only:
        # The items a run interrupted before its end got to (an ID.json each).
        items = [it for it in items if os.path.exists(os.path.join(a.results, it["id"] + ".json"))]
    os.makedirs(a.results, exist_ok=True)
    local_cat = os.path.join(a.results, "teval_tools.aos")
    shutil.copyfile(cat_path, local_cat)
    cat = catalog(cat_path)
    subset_file = os.path.join(a.results, "_subset.jsonl")
    with open(subset_file, "w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it) + "\n")
    total_s, rounds, written = 0.0, [], 0
    # Every 4th item first, then the rest: a run stopped early has planned
    # a spread of the set, which --score-only scores.
    order = items[::4] + [it for i, it in enumerate(items) if i % 4]
    for n, it in enumerate([] if a.score_only else order, 1):
        out = os.path.join(a.results, it["id"] + ".aos")
        if a.baseline:
            with open(out, "w", encoding="utf-8") as f:
                f.write(baseline_program(it, cat))
            continue
        if os.path.exists(out):
            os.remove(out)
        t0 = time.monotonic()
        try:
            p = subprocess.run([a.aosc, "new", it["intent"], "--with", local_cat, "-o", out, "--json"],
                               capture_output=True, text=True, timeout=a.timeout, env=env)
            rep = json.loads(p.stdout or "{}")
        except (subprocess.TimeoutExpired, json.JSONDecodeError) as e:
            rep = {"checked": False, "error": str(e)}
        dt = time.monotonic() - t0
        total_s += dt
        rep["seconds"] = round(dt, 2)
        rep["repair_rounds"] = rep.get("rounds", 0)
        rep.pop("diagnostics", None)
        with open(os.path.join(a.results, it["id"] + ".json"), "w", encoding="utf-8") as f:
            json.dump(rep, f)
        rounds.append(rep["repair_rounds"])
        written += bool(rep.get("checked"))
        print(f"[{n}/{len(items)}] {it['id']}: checked={rep.get('checked')} rounds={rep['repair_rounds']} {dt:.1f}s",
              file=sys.stderr, flush=True)
    if a.score_only:
        done = [json.load(open(os.path.join(a.results, it["id"] + ".json"), encoding="utf-8")) for it in items]
        if done:
            print(f"aosc new: {sum(bool(r.get('checked')) for r in done)}/{len(done)} written, mean rounds "
                  f"{sum(r.get('repair_rounds', 0) for r in done) / len(done):.2f}, "
                  f"{sum(r.get('seconds', 0) for r in done) / len(done):.1f} s/intent")
    elif not a.baseline and items:
        print(f"aosc new: {written}/{len(items)} written, mean rounds {sum(rounds) / len(rounds):.2f}, "
              f"{total_s / len(items):.1f} s/intent")
    score = os.path.join(a.eval, "score.py")
    sys.stdout.flush()
    # The scorer checks each program in a scratch directory it makes under
    # the temp directory, importing `../teval_tools.aos`; `use` is confined
    # to the project (the nearest directory above holding an aos.toml), so
    # its temp directory is one with an aos.toml.
    scratch = os.path.join(os.path.abspath(a.results), "_scorer_tmp")
    os.makedirs(scratch, exist_ok=True)
    with open(os.path.join(scratch, "aos.toml"), "w", encoding="utf-8") as f:
        f.write("# score.py's scratch directories: one project, so `use \"../teval_tools.aos\"` resolves.\n")
    aosc = shutil.which(a.aosc) if os.sep not in a.aosc else os.path.abspath(a.aosc)
    return subprocess.call([sys.executable, os.path.abspath(score), aosc or a.aosc, os.path.abspath(a.results),
                            os.path.abspath(subset_file)], env=dict(os.environ, TMPDIR=scratch))


if __name__ == "__main__":
    sys.exit(main())
