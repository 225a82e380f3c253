"""The landing zone of a measurement: generated once, and split into what is built first and
the one-day CDC drop that lands afterwards.

The drop is every CDC file whose name (CONTRACT section 2: `YYYYMMDD-HHMMSSmmm.csv[.gz]`, the
time DMS wrote it) falls on the zone's last commit day, or later: the generator's natural last
day, with new orders and events, and status changes, refunds, cancellations and deletes of old
keys. (Its last file is closed at the end of the CDC period, midnight, and may be named a few
seconds into the next day: it holds that day's last changes and belongs to the drop.)
Zones are linked, not copied (hard links: the same bytes and mtimes, no extra disk).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

CDC_NAME = re.compile(r"\A([0-9]{8})-[0-9]{9}\.csv(\.gz)?\Z")


@dataclass(frozen=True)
class Split:
    day: date  # the drop's day
    held_back: tuple[str, ...]  # paths relative to the zone, in name order
    span: str  # of the whole zone: first business date ... last commit or file-name date
    held_in_span: str  # first business date ... last commit date of the rest
    records: int  # records in the held-back files

    def as_dict(self) -> dict:
        return {"day": self.day.isoformat(), "files": len(self.held_back), "records": self.records,
                "span": self.span, "held_in_span": self.held_in_span}


def files(zone: Path) -> list[Path]:
    return sorted(p for p in zone.rglob("*") if p.is_file())


def name_day(path: Path) -> date | None:
    m = CDC_NAME.match(path.name)
    if not m:
        return None
    d = m.group(1)
    return date(int(d[:4]), int(d[4:6]), int(d[6:]))


def split_last_day(zone: Path, summary) -> Split:
    day = summary.last_commit_date
    every = files(zone)
    named = {p: name_day(p) for p in every}  # None: a LOAD file
    held = [p for p in every if named[p] is not None and named[p] >= day]
    rest_days = [d for d in named.values() if d is not None and d < day]
    # A CDC file is named just after its newest change, never within 15 minutes of midnight
    # (the generator's DMS): the newest name day of the rest is its last commit day.
    last = max(rest_days) if rest_days else day - timedelta(days=1)
    # The landing sensor places a file in the ledger on its name's day: a file named just after
    # midnight makes its run reach that day, and gold then holds it (customer segments, MRR).
    # The whole zone's span reaches it too, so that the baseline and every run cover the same
    # days (it still covers the earliest business date and the latest commit date).
    newest = max([day, *(d for d in named.values() if d is not None)])
    first = summary.first_business_date.isoformat()
    return Split(day, tuple(str(p.relative_to(zone)) for p in held), f"{first}...{newest.isoformat()}",
                 f"{first}...{last.isoformat()}", count_records(held))


def link_zone(src: Path, dst: Path, leave_out: tuple[str, ...] = ()) -> Path:
    """dst: every file of src but `leave_out`, as hard links."""
    skip = set(leave_out)
    for p in files(src):
        rel = str(p.relative_to(src))
        if rel in skip:
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(p, target)
    return dst


def land(src: Path, dst: Path, paths: tuple[str, ...]) -> None:
    """The drop lands: its files appear in dst (their mtimes are the generator's, long
    settled)."""
    for rel in paths:
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(src / rel, target)


def count_records(paths: list[Path]) -> int:
    n = 0
    for p in paths:
        data = p.read_bytes()
        if p.name.endswith(".gz"):
            data = gzip.decompress(data)
        n += sum(1 for rec in csv.reader(io.StringIO(data.decode("utf-8", "replace"), newline="")) if rec)
    return n
