"""Which landing files a run reads, decided against the manifest (bronze's ledger).

A file is read once: when it is new, or when its content changed after it was read (grown,
rewritten: it is read again whole and replaces its rows). A file landed again with the same
content is not new. Re-reading is explicit and bounded: a run over days that is not the
landing sensor's re-reads exactly the ingested files of those commit days that are still in
the zone; the rows of files the zone no longer has are kept. A local file changed in the last
`settle_seconds` may still be being copied and waits; so does a file that landed after the
sensor's tick that requested the run (it is the next tick's).

The landing sensor classifies files the same way (`classify`), so a tick and the run it
requests agree on what is new.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from lakehouse_assets.landing.files import LandingFile, LandingStore, decode_file
from lakehouse_assets.schemas.tables import MANIFEST
from lakehouse_assets.sources import SourceTable
from lakehouse_assets.storage.tables import Session


@dataclass(frozen=True)
class Ingested:
    """An ingested file, as the manifest knows it."""

    path: str
    etag: str
    sha256: str
    days: frozenset[date]
    last_seen_at: datetime | None


def ingested_files(session: Session) -> dict[str, dict[str, Ingested]]:
    """Every ingested file per table, from the manifest (a row per file and day: small)."""
    manifest = session.scan(MANIFEST, columns=["table_name", "_source_file", "etag", "sha256",
                                                "_partition_date", "last_seen_at"])
    rows = session.con.execute(
        f"""SELECT table_name, _source_file, any_value(etag), any_value(sha256),
                   list(DISTINCT _partition_date), max(last_seen_at)
            FROM {manifest} GROUP BY ALL"""
    ).fetchall()
    out: dict[str, dict[str, Ingested]] = {}
    for table, path, etag, sha, days, seen in rows:
        out.setdefault(table, {})[path] = Ingested(path, etag or "", sha or "", frozenset(days), seen)
    return out


def content_sha(store: LandingStore) -> Callable[[LandingFile], str]:
    """sha256 of a file's decompressed content, as the manifest records it."""
    return lambda f: decode_file(f, store.read_bytes(f)).sha256


@dataclass
class Classified:
    new: list[LandingFile] = field(default_factory=list)  # never ingested
    changed: list[LandingFile] = field(default_factory=list)  # ingested, content differs now
    relanded: list[LandingFile] = field(default_factory=list)  # new ETag, same content
    unchanged: list[LandingFile] = field(default_factory=list)


def classify(files: Iterable[LandingFile], ingested: dict[str, Ingested],
             sha_of: Callable[[LandingFile], str]) -> Classified:
    """Files against the ledger. Only a file whose ETag differs from the manifest's is read to
    compare contents (a vanished one counts as unchanged until a listing no longer has it)."""
    out = Classified()
    for f in files:
        known = ingested.get(f.path)
        if known is None:
            out.new.append(f)
        elif known.etag == f.etag:
            out.unchanged.append(f)
        else:
            try:
                same = sha_of(f) == known.sha256
            except OSError:
                same = True
            (out.relanded if same else out.changed).append(f)
    return out


@dataclass
class Plan:
    table: SourceTable
    read: list[LandingFile]  # to read now: new, changed, or re-read for the run's days
    replaced: set[str]  # of those, files whose rows change because their content did
    relanded: list[LandingFile]  # same content under a new ETag: only the manifest learns it
    listed: list[LandingFile]  # every file the zone has now (their last_seen_at moves on)
    kept_gone: list[str]  # ingested files of the run's days the zone no longer has: rows kept
    gone: list[str]  # every ingested file the zone no longer has
    waiting: list[LandingFile]  # not settled yet, or landed after the tick that asked
    landed: dict[tuple[str, str], str]  # (name stem, sha256) -> path of what is ingested


def plan_table(
    table: SourceTable,
    files: list[LandingFile],
    ingested: dict[str, Ingested],
    sha_of: Callable[[LandingFile], str],
    *,
    reread_days: frozenset[date] | None,
    now: datetime,
    settle_seconds: float,
    landed_before: datetime | None = None,
) -> Plan:
    cutoff = now.timestamp() - settle_seconds
    if landed_before is not None:
        cutoff = min(cutoff, landed_before.timestamp())
    settled = [f for f in files if f.modified <= cutoff]
    waiting = [f for f in files if f.modified > cutoff]
    c = classify(settled, ingested, sha_of)
    read = [*c.new, *c.changed]
    listed = {f.path for f in files}
    if reread_days:
        read += [f for f in c.unchanged + c.relanded if ingested[f.path].days & reread_days]
    kept_gone = sorted(
        p for p, known in ingested.items() if p not in listed and reread_days and known.days & reread_days
    )
    read_paths = {f.path for f in read}
    landed = {
        (p.rsplit("/", 1)[-1].removesuffix(".gz"), known.sha256): p
        for p, known in ingested.items()
        if p not in read_paths and known.sha256
    }
    return Plan(
        table=table,
        read=read,
        replaced={f.path for f in c.changed},
        relanded=[f for f in c.relanded if f.path not in read_paths],
        listed=files,
        kept_gone=kept_gone,
        gone=sorted(p for p in ingested if p not in listed),
        waiting=waiting,
        landed=landed,
    )
