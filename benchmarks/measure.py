"""Running a command as a subprocess and measuring it: wall seconds and the peak RSS of its
whole process tree.

The tree's RSS (the process and every descendant, summed) is polled every 50 ms from /proc
(or with psutil where there is no /proc); the result is the larger of the highest polled sum
and the command's own high-water mark (`VmHWM` of its process, read at every poll: it catches
a short peak between two polls of a single-process command). Summed RSS counts pages shared
between processes more than once, so for a tree of processes it is an upper bound.

Not `ru_maxrss` from wait4: on Linux a child started by vfork (as Python's subprocess does)
inherits the parent's high-water mark at exec, so every command started by a harness that
once held 3 GB (the comparisons run in it) would report at least 3 GB.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
POLL_SECONDS = 0.05


@dataclass
class Measured:
    cmd: list[str]
    returncode: int
    wall_seconds: float
    peak_rss_bytes: int
    started_at: float  # epoch seconds when the process was spawned
    stdout: Path
    stderr: Path
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    samples: list[tuple[float, int]] = field(default_factory=list, repr=False)  # (epoch s, tree RSS)

    def peak_between(self, start: float, end: float) -> int | None:
        """The highest polled tree RSS between two epoch times (a step's start and end)."""
        inside = [rss for t, rss in self.samples if start <= t <= end]
        return max(inside) if inside else None

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss_bytes / 2**20

    def tail(self, n: int = 30) -> str:
        lines = self.stderr.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def as_dict(self) -> dict:
        return {
            "cmd": self.cmd,
            "returncode": self.returncode,
            "wall_seconds": self.wall_seconds,
            "peak_rss_bytes": self.peak_rss_bytes,
            "load_before": self.load_before,
            "load_after": self.load_after,
        }


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    out += [int(p) for p in fh.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def high_water(pid: int) -> int:
    """VmHWM of `pid` (its own peak RSS since exec), in bytes; 0 when unknown."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_rss(pid: int) -> int:
    """RSS of `pid` and all its descendants, in bytes."""
    if os.path.isdir("/proc"):
        total, todo, seen = 0, [pid], set()
        while todo:
            p = todo.pop()
            if p in seen:
                continue
            seen.add(p)
            total += _rss(p)
            todo += _children(p)
        return total
    try:  # no /proc (macOS): psutil if it is installed
        import psutil

        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total
    except Exception:
        return 0


def loadavg() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)


def run(cmd: list[str], *, env: dict, cwd: Path, log_prefix: Path, timeout: float | None = None) -> Measured:
    """Run `cmd`, stdout and stderr to `<log_prefix>.out` / `.err`; measure it."""
    out, err = log_prefix.with_suffix(".out"), log_prefix.with_suffix(".err")
    load_before = loadavg()
    peak, hwm = [0], [0]
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    with open(out, "wb") as fo, open(err, "wb") as fe:
        started_at = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=fo, stderr=fe)

        def poll() -> None:
            while not stop.is_set():
                rss = tree_rss(proc.pid)
                samples.append((time.time(), rss))
                peak[0] = max(peak[0], rss)
                hwm[0] = max(hwm[0], high_water(proc.pid))
                if timeout is not None and time.perf_counter() - t0 > timeout:
                    proc.kill()
                stop.wait(POLL_SECONDS)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        stop.set()
        poller.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    # Without /proc (macOS) the child's own maxrss is the only high-water mark there is.
    own = hwm[0] if os.path.isdir("/proc") else usage.ru_maxrss * (1 if os.uname().sysname == "Darwin" else 1024)
    return Measured(
        cmd=[str(c) for c in cmd],
        returncode=proc.returncode,
        wall_seconds=wall,
        peak_rss_bytes=max(peak[0], own),
        started_at=started_at,
        stdout=out,
        stderr=err,
        load_before=load_before,
        load_after=loadavg(),
        samples=samples,
    )
