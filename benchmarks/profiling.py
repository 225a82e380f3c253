"""Profiles of measured commands: the same command again under pyinstrument (wall-clock
sampling of the main thread every 5 ms; not part of the timings, the profiler slows Python
down), and where its time went, ranked five ways (see benchmarks/README.md, Profiles).

Needs pyinstrument (`.venv/bin/pip install pyinstrument`).
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from pathlib import Path

from benchmarks import measure
from benchmarks.instance import PY, dagster_cmd


def profiled_cmd(cmd: list[str], session: Path) -> list[str]:
    """`cmd` (the dagster CLI or `python -m benchmarks.x`) under pyinstrument."""
    head = [PY, "-m", "pyinstrument", "-i", "0.005", "-r", "pyisession", "-o", str(session)]
    exe = dagster_cmd()
    if cmd[:len(exe)] == exe:
        return [*head, "-m", "dagster", *cmd[len(exe):]]
    if cmd[:2] == [PY, "-m"]:
        return [*head, "-m", *cmd[2:]]
    raise ValueError(f"do not know how to profile {cmd}")


def profile(cmd: list[str], env: dict, cwd: Path, out_dir: Path, name: str, what: str,
            timeout: float | None = None) -> dict:
    """Run `cmd` under pyinstrument; write <name>.txt, <name>-top.json and <name>.html."""
    session = cwd / f"{name}.pyisession"
    m = measure.run(profiled_cmd(cmd, session), env=env, cwd=cwd, log_prefix=cwd / name, timeout=timeout)
    if m.returncode != 0:
        raise RuntimeError(f"profiled {what} failed (exit {m.returncode}):\n{m.tail()}")
    # The interactive tree (tens of MB: results/.gitignore keeps it out of the repository).
    subprocess.run([PY, "-m", "pyinstrument", "--load", str(session), "-r", "html",
                    "-o", str(out_dir / f"{name}.html")], check=True, cwd=cwd)
    top = top_costs(session)
    (out_dir / f"{name}-top.json").write_text(json.dumps(top, indent=2))
    header = f"pyinstrument profile of {what}, {m.wall_seconds:.1f} s wall under the profiler\n\n"
    (out_dir / f"{name}.txt").write_text(header + format_top(top, 40) + "\n")
    return {"what": what, "wall_seconds": m.wall_seconds,
            "files": [f"{name}.txt", f"{name}-top.json", f"{name}.html"], **top}


def format_top(top: dict, n: int = 12) -> str:
    sections = [
        ("top costs (self time by what the stack is doing)", "by_cost"),
        ("self time by package ('(C)': C functions called from that package)", "self_time_by_package"),
        ("self time under the innermost project function", "self_time_by_project_function"),
        ("inclusive time of functions between 1% and 70% of the run", "inclusive_1_to_70_percent"),
        ("self time by function", "self_time_by_function"),
    ]
    lines = [f"profiled {top['profiled_seconds']} s wall, {top['cpu_seconds']} s CPU"]
    for title, key in sections:
        lines.append(f"{title}:")
        lines += [f"  {x['seconds']:8.1f} s  {x['share']:6.1%}  {x['name']}" for x in top[key][:n]]
    return "\n".join(lines)


def _package(path: str | None) -> str:
    if not path:
        return "?"
    p = path.replace("\\", "/")
    if "/lakehouse_assets/" in p:
        return "lakehouse_assets"
    if "site-packages/" in p:
        return p.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if p.startswith("<"):
        return p
    return "python stdlib" if "/lib/python" in p else "other"


# Where a sample's time goes, by what is on its stack: the first rule (in this order) that
# matches any frame of the stack names it. (name, function name or None, path fragment or None)
COST_RULES = [
    ("Dagster run creation: the planned asset and check events (event log)",
     "_log_asset_planned_events", None),
    ("Dagster: an ASSET_MATERIALIZATION event per asset partition after each output (event log)",
     "_log_materialization_or_observation_events_for_asset", None),
    ("project checks: Pandera models, reconciliations, warning checks", None, "lakehouse_assets/checks/"),
    ("bronze: listing, reading, splitting landing files; the ledger", None, "lakehouse_assets/landing/"),
    ("bronze: listing, reading, splitting landing files; the ledger", None, "lakehouse_assets/ingest/"),
    ("bronze: listing, reading, splitting landing files; the ledger", None, "lakehouse_assets/assets/bronze.py"),
    ("silver: key-state merge, typing, write plan", None, "lakehouse_assets/cdc/"),
    ("silver: key-state merge, typing, write plan", None, "lakehouse_assets/assets/silver.py"),
    ("gold: stale cells and SQL over silver", None, "lakehouse_assets/gold/"),
    ("gold: stale cells and SQL over silver", None, "lakehouse_assets/assets/gold.py"),
    ("IO manager handle_output: replacing the step's scope (lazy views computed here)",
     "handle_output", "lakehouse_assets/storage/"),
    ("warehouse sessions: opening, scans, replaces", None, "lakehouse_assets/storage/"),
    ("landing sensor: listing, impact, leftovers", None, "lakehouse_assets/sensors/"),
    ("other project code", None, "lakehouse_assets/"),
    ("Dagster: other event-log writes (step events, log messages)", "store_event", None),
    ("Dagster: other event-log writes (step events, log messages)", "handle_new_event", None),
    ("imports (loading the code location)", "_find_and_load", None),
]


def _rule(function: str, path: str | None) -> int | None:
    p = (path or "").replace("\\", "/")
    for i, (_, fn, frag) in enumerate(COST_RULES):
        if (fn is None or fn == function) and (frag is None or frag in p):
            return i
    return None


def top_costs(session_path: Path, n: int = 20) -> dict:
    """Where the profiled command spent its (wall) time: by what the stack is doing
    (COST_RULES); self time by package (time in C functions counted for the package that
    called them); self time by the innermost project function on the stack (or none: the
    framework); inclusive time of every function between 1% and 70% of the total, each counted
    once per stack (this names the framework's own costs, e.g. writing events); self time by
    function."""
    from pyinstrument.session import Session

    session = Session.load(str(session_path))
    root = session.root_frame()
    total = root.time if root else 0.0
    self_fn: dict[str, float] = defaultdict(float)
    self_pkg: dict[str, float] = defaultdict(float)
    by_project: dict[str, float] = defaultdict(float)
    inclusive: dict[str, float] = defaultdict(float)
    by_cost: dict[str, float] = defaultdict(float)
    stack = [(root, frozenset(), None, "?", None)] if root else []
    while stack:
        frame, on_path, project, caller_pkg, rule = stack.pop()
        if frame.is_synthetic:  # '[self]' and the like: already in the parent's self time
            continue
        name = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
        pkg = _package(frame.file_path)
        if pkg.startswith("<"):  # a C function: its caller's package
            pkg = f"{caller_pkg} (C)" if not caller_pkg.endswith("(C)") else caller_pkg
        if pkg == "lakehouse_assets":
            project = name
        mine = _rule(frame.function, frame.file_path)
        if mine is not None and (rule is None or mine < rule):
            rule = mine
        own = frame.total_self_time
        by_cost[COST_RULES[rule][0] if rule is not None else "Dagster/Python: everything else"] += own
        self_fn[name] += own
        self_pkg[pkg] += own
        by_project[project or "(no project frame: Dagster itself)"] += own
        if name not in on_path:
            inclusive[name] += frame.time
        child_path = on_path | {name}
        stack += [(c, child_path, project, pkg, rule) for c in frame.children]

    def top(d: dict[str, float], k: int = n) -> list[dict]:
        items = sorted(d.items(), key=lambda kv: -kv[1])[:k]
        return [{"name": key, "seconds": round(v, 2), "share": round(v / total, 4) if total else None}
                for key, v in items]

    return {
        "profiled_seconds": round(total, 2),
        "cpu_seconds": round(getattr(session, "cpu_time", 0.0) or 0.0, 2),
        "by_cost": top(by_cost),
        "self_time_by_package": top(self_pkg),
        "self_time_by_project_function": top(by_project),
        "inclusive_1_to_70_percent": top(
            {k: v for k, v in inclusive.items() if 0.01 * total <= v <= 0.7 * total}, 40),
        "self_time_by_function": top(self_fn),
    }
