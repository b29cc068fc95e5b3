"""LangGraph on the same shapes as `aosc run` (the peer side of run.sh).

    python langgraph_bench.py chain N DB      N nodes in a chain
    python langgraph_bench.py fan N DB        one node fanned out N times (Send)

Durable like aosc: SqliteSaver on a fresh file, durability="sync" (every
step's checkpoint is written before the next step runs). The "model" is a
zero-latency pure function, as aosc's `sim` is under AOS_LLM=sim.
"""
import operator
import sqlite3
import sys
from typing import Annotated, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send


def sim(prompt: str) -> str:
    # A short deterministic reply that depends on the prompt, like sim's.
    return "[sim] " + " ".join(prompt.split()[:12])


class ChainState(TypedDict):
    last: str


def chain(n: int):
    g = StateGraph(ChainState)
    for i in range(n):
        if i == 0:
            g.add_node("s0", lambda st: {"last": sim("start")})
        else:
            g.add_node(f"s{i}", lambda st: {"last": sim("next after " + st["last"])})
    g.add_edge(START, "s0")
    for i in range(1, n):
        g.add_edge(f"s{i-1}", f"s{i}")
    g.add_edge(f"s{n-1}", END)
    return g, {"last": ""}


class FanState(TypedDict):
    items: list
    results: Annotated[list, operator.add]


class ItemState(TypedDict):
    x: int


def fan(n: int):
    g = StateGraph(FanState)
    g.add_node("each", lambda st: {"results": [sim(f"item {st['x']}")]})
    g.add_conditional_edges(START, lambda st: [Send("each", {"x": x}) for x in st["items"]], ["each"])
    g.add_edge("each", END)
    return g, {"items": list(range(n)), "results": []}


def main() -> None:
    shape, n, db = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    g, inputs = chain(n) if shape == "chain" else fan(n)
    conn = sqlite3.connect(db, check_same_thread=False)
    saver = SqliteSaver(conn)
    app = g.compile(checkpointer=saver)
    out = app.invoke(
        inputs,
        config={"configurable": {"thread_id": "bench"}, "recursion_limit": n + 10},
        durability="sync",
    )
    if shape == "chain":
        assert out["last"].startswith("[sim]"), out
    else:
        assert len(out["results"]) == n, len(out["results"])
    conn.close()


if __name__ == "__main__":
    main()
