#!/bin/sh
# The peer benchmark: `aosc run` (release) beside LangGraph with SqliteSaver
# (durability="sync") on 1k and 10k chains and 1k and 10k fan-outs (Send),
# paired, in one run. Needs cargo, python3 (with venv) and network access to
# PyPI the first time. Usage, from the repository root:
#
#     runtime/benches/peers/run.sh [ROUNDS]        # default 3 rounds
#     PEERS_SCENARIOS=chain1000,fan1000 runtime/benches/peers/run.sh 5
set -eu
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
HERE="$ROOT/runtime/benches/peers"
VENV="$ROOT/target/peers-venv"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "langgraph==1.2.24" "langgraph-checkpoint-sqlite==3.1.2"
fi
(cd "$ROOT" && cargo build --release -p aosc --quiet)
"$VENV/bin/python" -c 'import importlib.metadata as m; print("langgraph", m.version("langgraph"), "/ langgraph-checkpoint-sqlite", m.version("langgraph-checkpoint-sqlite"))'
exec python3 "$HERE/bench.py" "$ROOT/target/release/aosc" "$VENV/bin/python" "${1:-3}"
