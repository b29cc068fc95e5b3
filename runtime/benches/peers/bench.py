"""Paired timing of `aosc run` (release) against LangGraph on the same
shapes; standard library only. run.sh prepares the venv and the binary.

    python3 bench.py AOSC VENV_PYTHON [ROUNDS]

Each round runs aosc then LangGraph (A B A B ...), each as a whole process
on a fresh database, and records wall time and peak RSS (wait4). Prints
the medians and the median of the per-round ratios LangGraph / aosc.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = 'model m = anthropic("claude-haiku-3.5") { input: $0.80/M, output: $4.00/M, context: 200000 }\nrole executor = [m]\n'


def chain_aos(n: int) -> str:
    lines = [MODEL, "workflow chain() -> String {", "  budget: $1000.00"]
    lines.append('  step s0: String = llm executor("start") { max_tokens: 24 }')
    for i in range(1, n):
        lines.append(f'  step s{i}: String = llm executor("next after {{s{i-1}}}") {{ max_tokens: 24 }}')
    lines.append(f"  return s{n-1}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def fan_aos(n: int) -> str:
    return MODEL + f"""workflow fan(items: List<Int>) -> List<String> {{
  budget: ${max(1000, n // 2)}.00
  max_param_tokens: {8 * n + 100}
  step each: List<String> = for x in items => llm executor("item {{x}}") {{
    max_items: {n}
    max_tokens: 24
  }}
  return each
}}
"""


def fan_ir(aosc: str, src: str, out: str) -> None:
    """The fan-out as checked IR, its step typed by the item (`String`).

    Text fan-outs run from source since issue 11 landed (the default);
    PEERS_FAN_FROM_IR=1 runs the fan-out from checked IR instead (the check
    is then outside the timing), as the first measurements did.
    """
    ir = json.loads(subprocess.run([aosc, "check", "--emit-ir", src], check=True, capture_output=True).stdout)
    for st in ir["workflows"]["fan"]["steps"]:
        if st.get("ty", {}).get("kind") == "list":
            st["ty"] = st["ty"]["item"]
    with open(out, "w") as f:
        json.dump(ir, f)


def timed(argv, env):
    """Runs argv; returns (wall seconds, peak RSS KiB, exit status)."""
    t = time.perf_counter()
    with tempfile.TemporaryFile() as errf:
        p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=errf)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        errf.seek(0)
        err = errf.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{argv[0]} failed ({code}): {err[-2000:]}")
    return wall, ru.ru_maxrss


def main() -> None:
    aosc, py = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    scenarios = [("chain", 1000), ("chain", 10000), ("fan", 1000), ("fan", 10000)]
    if os.environ.get("PEERS_SCENARIOS"):
        wanted = os.environ["PEERS_SCENARIOS"].split(",")
        scenarios = [s for s in scenarios if f"{s[0]}{s[1]}" in wanted]
    work = tempfile.mkdtemp(prefix="aos-peers-")
    print(f"load average at start: {open('/proc/loadavg').read().split()[:3]}, cpus: {os.cpu_count()}")
    print("| scenario | aosc median | aosc steps/s | aosc peak RSS | LangGraph median | LangGraph peak RSS | ratio LangGraph/aosc (median of pairs; min-max) |")
    print("|---|---|---|---|---|---|---|")
    try:
        for shape, n in scenarios:
            src = os.path.join(work, f"{shape}{n}.aos")
            with open(src, "w") as f:
                f.write(chain_aos(n) if shape == "chain" else fan_aos(n))
            if shape == "fan" and os.environ.get("PEERS_FAN_FROM_IR"):
                fan_ir(aosc, src, src + ".json")
                src += ".json"
            a, b, ra, rb = [], [], [], []
            for r in range(rounds):
                home = os.path.join(work, f"home-{shape}{n}-{r}")
                env = dict(os.environ, AOS_HOME=home, AOS_LLM="sim")
                env.pop("AOS_DATABASE_URL", None)
                argv = [aosc, "run", src, "--json"]
                if shape == "fan":
                    argv += ["--input", "items=" + str(list(range(n))).replace(" ", "")]
                wa, ma = timed(argv, env)
                db = os.path.join(work, f"lg-{shape}{n}-{r}.db")
                wb, mb = timed([py, os.path.join(HERE, "langgraph_bench.py"), shape, str(n), db], dict(os.environ))
                a.append(wa); b.append(wb); ra.append(ma); rb.append(mb)
                shutil.rmtree(home, ignore_errors=True)
            ratios = sorted(y / x for x, y in zip(a, b))
            ma_, mb_ = statistics.median(a), statistics.median(b)
            print(
                f"| {shape} {n} | {ma_:.3f} s | {n / ma_:,.0f} | {statistics.median(ra) / 1024:.0f} MiB "
                f"| {mb_:.3f} s | {statistics.median(rb) / 1024:.0f} MiB "
                f"| {statistics.median(ratios):.1f}x ({ratios[0]:.1f}-{ratios[-1]:.1f}) |",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at end: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
