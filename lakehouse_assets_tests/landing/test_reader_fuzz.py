"""Fuzzing the landing reader: nothing lost under bad files (CONTRACT sections 2 and 3).

`read_table` is a black box here. Landing files are built record by record from the table
declarations, written in every shape RFC 4180 and DMS allow (quoting, CRLF, blank lines,
header rows, gzip, concatenated gzip members), then damaged: bad quoting, NUL bytes, invalid
UTF-8, wrong column counts, bad Op and commit timestamps, truncated or corrupted gzip,
random bytes, enormous fields, zero-byte files, directories named like landing files.

Whatever lands, the properties are the same:
- `read_table` does not raise;
- per file the manifest adds up (records = changes + rejects, each matching the frames) and
  `_source_row` over changes + rejects is exactly 1..records;
- the record count is the one we can compute independently (records we wrote, or for
  mangled bytes: every line with content is in some record, in file order);
- clean records arrive with exactly the values written ("" stays "", an empty unquoted field
  is NULL), Python's csv module being the independent oracle for the encoding;
- every reject says what is wrong.

Hypothesis runs with fixed seeds and budgets (derandomized, no example database), so CI runs
the same cases every time.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakehouse_assets.landing.files import LocalLandingStore
from lakehouse_assets.landing.reader import read_table
from lakehouse_assets.sources import TABLES_BY_NAME, SourceTable
from lakehouse_assets_tests.examples import fixed as fuzz
from lakehouse_assets_tests.landing_builder import BAD_TS, RAW, field, put, record

pytestmark = pytest.mark.unit

INGESTED = datetime(2024, 12, 9, 6, 0, tzinfo=timezone.utc)
# Three widths: 7, 8 and 11 columns.
TABLES = [TABLES_BY_NAME[n] for n in ("core_event", "core_order", "core_invoice")]
ORDER = TABLES_BY_NAME["core_order"]


@contextmanager
def landing_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fuzz-landing-") as tmp:
        yield Path(tmp)


def read(root: Path, table: SourceTable):
    return read_table(LocalLandingStore(str(root)), table, INGESTED)


# --- the invariants every read must satisfy ----------------------------------------------------


def counts_by_file(frame: pl.DataFrame) -> dict[str, int]:
    return dict(frame.group_by("_source_file").len().rows()) if len(frame) else {}


def assert_manifest_matches_frames(result, table: SourceTable) -> None:
    """The manifest's per-file changes and rejects are what the frames hold, no row number is
    used twice in a file, and every reject names its table and says why."""
    manifest = result.manifest
    files = manifest["_source_file"].to_list()
    assert len(files) == len(set(files)), f"a file twice in the manifest: {files}"
    changes, rejects = counts_by_file(result.changes), counts_by_file(result.rejects)
    assert set(changes) | set(rejects) <= set(files), "rows from a file the manifest does not list"
    for row in manifest.iter_rows(named=True):
        f = row["_source_file"]
        assert row["changes"] == changes.get(f, 0), (f, row)
        assert row["rejects"] == rejects.get(f, 0), (f, row)
    both = pl.concat([result.changes.select("_source_file", "_source_row"),
                      result.rejects.select("_source_file", "_source_row")])
    assert not both.is_duplicated().any(), "two records of one file with the same _source_row"
    for reason in result.rejects["reason"].to_list():
        assert isinstance(reason, str) and reason.strip(), f"reject without a reason: {reason!r}"
    assert set(result.rejects["table_name"].to_list()) <= {table.name}
    assert set(result.changes["_op"].to_list()) <= {"I", "U", "D"}
    assert result.changes["_commit_ts"].null_count() == 0


def assert_records_add_up(result) -> dict[str, int]:
    """Per file, per the manifest: records = changes + rejects, and `_source_row` over changes
    + rejects is exactly 1..records. Returns records per file."""
    for row in result.manifest.iter_rows(named=True):
        f = row["_source_file"]
        assert row["records"] == row["changes"] + row["rejects"], (
            f"{f}: manifest says {row['records']} records but {row['changes']} changes + "
            f"{row['rejects']} rejects ({result.rejects.filter(pl.col('_source_file') == f).to_dicts()})"
        )
        numbers = sorted(
            result.changes.filter(pl.col("_source_file") == f)["_source_row"].to_list()
            + result.rejects.filter(pl.col("_source_file") == f)["_source_row"].to_list()
        )
        assert numbers == list(range(1, row["records"] + 1)), f"{f}: _source_row {numbers}"
    return dict(result.manifest.select("_source_file", "records").rows())


def assert_accounted(result, table: SourceTable) -> dict[str, int]:
    """Everything is accounted for: the manifest matches the frames and adds up per file."""
    assert_manifest_matches_frames(result, table)
    return assert_records_add_up(result)


def file_rows(frame: pl.DataFrame, path: str) -> pl.DataFrame:
    return frame.filter(pl.col("_source_file") == path).sort("_source_row")


# --- records built from the declaration ------------------------------------------------------

SPECIALS = list('",\n\r\x00 \t\';$\\') + ["\r\n", '""', "é", "€", "😀", "\u2028", "\ufeff", "NULL"]
char = st.one_of(st.sampled_from(SPECIALS), st.characters(codec="utf-8"))
text_value = st.lists(char, max_size=8).map("".join)
value = st.one_of(st.none(), st.just(""), text_value)  # None: NULL (empty unquoted field)
seq_value = st.one_of(
    st.none(), st.just(""), st.integers(0, 10**35 - 1).map(lambda i: f"{i:035d}"), text_value
)


@st.composite
def commit_ts(draw) -> tuple[str, datetime]:
    """`yyyy-MM-dd HH:mm:ss.ffffff` with 0 to 6 fraction digits, and the instant it means."""
    dt = draw(st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2025, 12, 31, 23, 59, 59)))
    digits = draw(st.integers(0, 6))
    frac = f"{dt.microsecond:06d}"[:digits]
    text = dt.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac}" if digits else "")
    micro = int(frac.ljust(6, "0")) if digits else 0
    return text, dt.replace(microsecond=micro, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Rec:
    op: str | None  # None: a full-load record without the Op column
    ts: str
    commit_ts: datetime
    values: tuple[str | None, ...]  # in the declaration's column order
    seq: str | None

    def fields(self) -> list[str | None]:
        return ([self.op] if self.op is not None else []) + [self.ts, *self.values, self.seq]

    def expected(self, table: SourceTable) -> dict:
        return {
            **dict(zip(table.column_names, self.values)),
            "_op": self.op or "I",
            "_commit_ts": self.commit_ts,
            "_seq": self.seq,
        }


@st.composite
def recs(draw, table: SourceTable, load: bool, values=value, max_size: int = 6) -> list[Rec]:
    ops = [None, "I", "U", "D"] if load else ["I", "U", "D"]
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        ts, instant = draw(commit_ts())
        out.append(
            Rec(
                draw(st.sampled_from(ops)),
                ts,
                instant,
                tuple(draw(values) for _ in table.columns),
                draw(st.one_of(st.none(), values) if values is not value else seq_value),
            )
        )
    return out


def quoted(v: str | None) -> str:
    """Every non-NULL field quoted (valid RFC 4180, just more quotes than needed)."""
    return "" if v is None else '"' + v.replace('"', '""') + '"'


def render(table: SourceTable, rec: Rec, quote_all: bool) -> str:
    if quote_all:
        return ",".join(quoted(v) for v in rec.fields())
    return record(table, rec.op, rec.ts, dict(zip(table.column_names, rec.values)), rec.seq)


def header_names(table: SourceTable, with_op: bool) -> list[str]:
    return (["Op"] if with_op else []) + ["_dms_commit_ts", *table.column_names, "_dms_seq"]


CASES = [str, str.upper, str.lower, str.swapcase]


@dataclass
class Landed:
    name: str
    recs: list[Rec]
    header: list[str] | None
    plain: bytes  # the CSV bytes
    data: bytes  # as landed (gzip for .gz names)


load_name = st.integers(1, 0xFFFFFFFF).map(lambda i: f"LOAD{i:08X}.csv")
cdc_name = st.builds(
    lambda d, ms: f"{d:%Y%m%d}-{d:%H%M%S}{ms:03d}.csv",
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2025, 12, 31)),
    st.integers(0, 999),
)


@st.composite
def gzipped(draw, plain: bytes) -> bytes:
    """One gzip member, or the bytes cut anywhere into several concatenated members."""
    cuts = sorted(draw(st.lists(st.integers(0, len(plain)), max_size=2)))
    bounds = [0, *cuts, len(plain)]
    return b"".join(gzip.compress(plain[a:b], mtime=0) for a, b in pairwise(bounds))


@st.composite
def csv_text(draw, table: SourceTable, rs: list, lines_for=None) -> tuple[str, list[str] | None]:
    """The records as one file: optional header (any case, Op or not), blank lines anywhere,
    LF or CRLF, with or without a final line ending, minimal or full quoting."""
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    quote_all = draw(st.booleans())
    lines: list[str] = [""] * draw(st.integers(0, 1))
    header = None
    if draw(st.integers(0, 3)) == 0:
        header = [draw(st.sampled_from(CASES))(n) for n in header_names(table, draw(st.booleans()))]
        lines.append(",".join(quoted(n) if quote_all else n for n in header))
    for rec in rs:
        lines += [""] * draw(st.integers(0, 2))
        lines.append(lines_for(rec) if lines_for else render(table, rec, quote_all))
    lines += [""] * draw(st.integers(0, 2))
    text = eol.join(lines) + (eol if draw(st.booleans()) else "")
    return text, header


@st.composite
def landed_file(draw, table: SourceTable, name: str, values=value) -> Landed:
    rs = draw(recs(table, name.startswith("LOAD"), values))
    text, header = draw(csv_text(table, rs))
    plain = text.encode()
    gz = draw(st.booleans())
    if gz:
        return Landed(name + ".gz", rs, header, plain, draw(gzipped(plain)))
    return Landed(name, rs, header, plain, plain)


@st.composite
def landing_zone(draw, values=value) -> tuple[SourceTable, list[Landed]]:
    table = draw(st.sampled_from(TABLES))
    names = draw(st.lists(st.one_of(load_name, cdc_name), min_size=1, max_size=3, unique=True))
    return table, [draw(landed_file(table, n, values)) for n in names]


def land(root: Path, table: SourceTable, files: list[Landed]) -> None:
    for f in files:
        put(root, f.name, f.data, folder=table.landing_folder)


def python_csv(plain: bytes) -> list[list[str]]:
    """The oracle: Python's csv module (strict), blank lines dropped. It cannot tell "" from
    NULL; the generated records can."""
    rows = csv.reader(io.StringIO(plain.decode("utf-8"), newline=""), strict=True)
    return [r for r in rows if r]


def assert_changes_are(result, table: SourceTable, path: str, expected: list[Rec]) -> None:
    got = file_rows(result.changes, path)
    assert got["_source_row"].to_list() == list(range(1, len(expected) + 1)), path
    cols = [*table.column_names, "_op", "_commit_ts", "_seq"]
    for row, rec in zip(got.select(cols).iter_rows(named=True), expected):
        assert row == rec.expected(table), (path, rec)


# --- 1. valid records, every legal shape -------------------------------------------------------


@fuzz(60, 20241201)
@given(landing_zone())
def test_valid_records_arrive_exactly_as_written(zone):
    """Clean DMS files in every legal shape (quoting, CRLF, blank lines, header, gzip, gzip
    members cut anywhere): every record is a change with exactly the values written, NULL and
    "" kept apart, no reject, and the count is the number of records we wrote."""
    table, files = zone
    for f in files:  # the oracle agrees with what we meant to write
        rows = python_csv(f.plain)
        if f.header is not None:
            assert [n.lower() for n in rows.pop(0)] == [n.lower() for n in f.header]
        assert rows == [["" if v is None else v for v in r.fields()] for r in f.recs]
    with landing_root() as root:
        land(root, table, files)
        result = read(root, table)
    records = assert_accounted(result, table)
    assert result.rejects.is_empty(), result.rejects.to_dicts()
    assert result.ignored == []
    assert records == {f"{table.landing_folder}/{f.name}": len(f.recs) for f in files}
    for f in files:
        assert_changes_are(result, table, f"{table.landing_folder}/{f.name}", f.recs)


# --- 2. damaged records among clean ones --------------------------------------------------------

# Values of this test never start (after any quotes) with a delimiter: an unclosed quote then
# has exactly one reading, "this line is broken", and the expected outcome is unambiguous.
safe_value = value.map(lambda v: "x" + v if v is not None and v.lstrip('"')[:1] in (",", "\n", "\r") else v)
token = st.text(st.sampled_from("abcXYZ019 -:.;$'\\\x00é"), min_size=1, max_size=6).filter(str.strip)
bad_op = st.one_of(
    st.sampled_from(["", "i", "u", "d", "X", "II", " I", "D ", "U\x00", "\x00", "\ufeffU", "INSERT", "NULL"]),
    token,
).filter(lambda op: op not in ("I", "U", "D"))
bad_ts = st.one_of(
    st.sampled_from(BAD_TS),
    commit_ts().map(lambda t: t[0] + "\x00"),
    commit_ts().map(lambda t: "\x00" + t[0]),
    commit_ts().map(lambda t: t[0].replace(" ", "\x00")),
    commit_ts().map(lambda t: t[0] + "," + t[0]),
)
INVALID_UTF8 = [b"\xff", b"\xfe", b"\x80", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]
MUTATIONS = ["short", "long", "token", "op", "no_op", "ts", "utf8", "quote"]
KEYWORDS = {
    "short": ("column",),
    "long": ("column",),
    "token": ("column",),
    "no_op": ("column",),
    "op": ("op",),
    "ts": ("_dms_commit_ts",),
    "utf8": ("utf", "decod"),
    "quote": ("quot", "csv"),
}


@dataclass
class Broken:
    kind: str
    line: bytes  # the record as landed, without its line ending
    pieces: list[str]  # for utf8: the valid text around the bad bytes, in order


@st.composite
def break_record(draw, table: SourceTable, rec: Rec, kind: str, cdc: bool) -> Broken:
    """One record damaged so that it cannot be read; the damage stays on its own line."""
    texts = [field(v) for v in rec.fields()]
    if kind == "short":
        k = draw(st.integers(2, len(texts) - 1))
        texts = texts[:-k]
    elif kind == "long":
        texts += [field(draw(st.one_of(st.none(), token))) for _ in range(draw(st.integers(1, 3)))]
    elif kind == "token":
        texts = [draw(token)]
    elif kind == "op":
        texts[0] = field(draw(bad_op))
    elif kind == "no_op":
        texts = texts[1:] if cdc else texts[:-2]  # in a LOAD file: n + 1 fields instead
    elif kind == "ts":
        texts[1] = field(draw(bad_ts))
    elif kind == "quote":
        candidates = [i for i, t in enumerate(texts) if t and not t.startswith('"')]
        i = draw(st.sampled_from(candidates))
        how = draw(st.sampled_from(["stray", "after_close", "unclosed"]))
        t = texts[i]
        if how == "stray":  # a quote inside an unquoted field
            k = draw(st.integers(1, len(t)))
            texts[i] = t[:k] + '"' + t[k:]
        elif how == "after_close":  # text after a closing quote
            texts[i] = '"' + t + '"' + draw(st.text(st.sampled_from("xyz019 "), min_size=1, max_size=3))
        else:  # a quote that is never closed on this line
            texts[i] = '"' + t
    line = ",".join(texts)
    if kind == "utf8":
        # Bad bytes inside one value (inside its quotes when it is quoted): the record is
        # well-formed CSV, only not UTF-8.
        i = draw(st.integers(0, len(texts) - 1))
        v = rec.fields()[i] or ""
        k = draw(st.integers(0, len(v)))
        bad = draw(st.sampled_from(INVALID_UTF8))
        if any(ch in v for ch in ',"\n\r'):
            head, tail = '"' + v[:k].replace('"', '""'), v[k:].replace('"', '""') + '"'
        else:
            head, tail = v[:k], v[k:]
        before, after = ",".join(texts[:i] + [head]), ",".join([tail] + texts[i + 1 :])
        return Broken(kind, before.encode() + bad + after.encode(), [before, after])
    return Broken(kind, line.encode(), [line])


def on_one_line(rec: Rec) -> Rec:
    """The record with line breaks in its values turned into spaces."""

    def flat(v: str | None) -> str | None:
        return v if v is None else v.replace("\n", " ").replace("\r", " ")

    return Rec(rec.op, rec.ts, rec.commit_ts, tuple(flat(v) for v in rec.values), flat(rec.seq))


@st.composite
def damaged_file(draw):
    """A file of clean records with some of them damaged (at most one quoting mutation per
    file: two bad quotes can legitimately pair up into one quoted field)."""
    table = draw(st.sampled_from(TABLES))
    name = draw(st.one_of(load_name, cdc_name))
    cdc = not name.startswith("LOAD")
    rs = draw(recs(table, load=False, values=safe_value, max_size=8))
    kinds = draw(st.lists(st.one_of(st.none(), st.sampled_from(MUTATIONS)), min_size=len(rs), max_size=len(rs)))
    quote_seen = False
    plan: list[Rec | Broken] = []
    for rec, kind in zip(rs, kinds):
        if kind == "quote":
            kind = "op" if quote_seen else kind
            quote_seen = True
        if kind is None:
            plan.append(rec)
        else:
            plan.append(draw(break_record(table, on_one_line(rec), kind, cdc)))
    # Lines as bytes: clean records rendered, broken ones as they are.
    marker = "\x01BROKEN{}\x01"
    lines = {id(p): marker.format(k) for k, p in enumerate(plan) if isinstance(p, Broken)}
    text, header = draw(csv_text(table, plan, lines_for=lambda p: lines.get(id(p)) or render(table, p, False)))
    data = text.encode()
    for k, p in enumerate(plan):
        if isinstance(p, Broken):
            data = data.replace(marker.format(k).encode(), p.line)
    return table, name, plan, data, header


@fuzz(80, 20241202)
@given(damaged_file())
def test_damaged_records_are_rejected_one_by_one_and_the_rest_read_exactly(case):
    """Bad quoting, NUL in Op or the timestamp, invalid UTF-8, wrong column counts, a CDC
    record without Op, a bad Op or timestamp, CRLF, blank lines, header: each damaged record
    is one reject at its own row, with its raw text and a reason naming the damage; every
    clean record around it is a change with exactly its values."""
    table, name, plan, data, _header = case
    with landing_root() as root:
        put(root, name, data, folder=table.landing_folder)
        result = read(root, table)
    path = f"{table.landing_folder}/{name}"
    assert assert_accounted(result, table) == {path: len(plan)}
    changes = file_rows(result.changes, path)
    rejects = file_rows(result.rejects, path)
    clean = [(k + 1, p) for k, p in enumerate(plan) if isinstance(p, Rec)]
    broken = [(k + 1, p) for k, p in enumerate(plan) if isinstance(p, Broken)]
    assert changes["_source_row"].to_list() == [k for k, _ in clean]
    assert rejects["_source_row"].to_list() == [k for k, _ in broken]
    cols = [*table.column_names, "_op", "_commit_ts", "_seq"]
    for row, (_, rec) in zip(changes.select(cols).iter_rows(named=True), clean):
        assert row == rec.expected(table)
    for row, (k, b) in zip(rejects.iter_rows(named=True), broken):
        assert any(w in row["reason"].lower() for w in KEYWORDS[b.kind]), (k, b.kind, row["reason"])
        raw = row[RAW]
        if b.kind == "utf8":  # bad bytes may be shown escaped; the text around them is there
            at = 0
            for piece in b.pieces:
                at = raw.find(piece, at)
                assert at >= 0, (k, raw, b.pieces)
                at += len(piece)
        else:
            assert raw == b.line.decode(), (k, raw, b.line)


# --- 3. mangled bytes: no line with content silently dropped ----------------------------------

HOSTILE_BYTES = [b'"', b",", b"\n", b"\r", b"\r\n", b"\x00", b"\xff", b"\xc3", b"\xe2\x82", b'""', b"\n\n", b"\xef\xbb\xbf", b'","', b"\\"]


@st.composite
def mangled(draw, table: SourceTable) -> bytes:
    kind = draw(st.sampled_from(["binary", "csvish", "edited"]))
    if kind == "binary":
        return draw(st.binary(max_size=400))
    if kind == "csvish":
        return draw(st.text(st.sampled_from('UID,"\n\r\x00 ab1-:.\\é'), max_size=300)).encode()
    rs = draw(recs(table, load=draw(st.booleans())))
    text, _ = draw(csv_text(table, rs))
    data = bytearray(text.encode())
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        if op == "insert":
            data[at:at] = draw(st.sampled_from(HOSTILE_BYTES))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 5))]
        else:
            data[at : at + 1] = draw(st.sampled_from(HOSTILE_BYTES))
    return bytes(data)


LAYOUTS = {tuple(n.lower() for n in header_names(t, op)) for t in TABLES for op in (True, False)}


def starts_with_header(text: str) -> bool:
    """The first non-blank line is a well-formed CSV record naming the layout's columns (any
    case, Op or not): DMS AddColumnName."""
    for line in text.split("\n"):
        if line.rstrip("\r"):
            try:
                names = next(csv.reader([line.rstrip("\r")], strict=True))
            except csv.Error:
                return False
            return tuple(n.lower() for n in names) in LAYOUTS
    return False


_UNDECODABLE = re.compile(r"(?:\\x[0-9a-fA-F]{2}|\ufffd)+")


def neutral(text: str) -> str:
    """Undecodable bytes however shown (`\\xff` escapes or U+FFFD), as one U+FFFD per run."""
    return _UNDECODABLE.sub("\ufffd", text)


def assert_every_line_is_in_a_record(result, path: str, data: bytes) -> None:
    """Independent of how the bytes are split: (1) the records, in row order, occur in the
    file in that order (a reject by its raw text, a change by each of its values); (2) the
    lines the records span, plus the skipped header, cover every line of the file except at
    most its blank lines: no line with content is silently dropped, none counted twice."""
    text = neutral(data.decode("utf-8", errors="backslashreplace"))
    changes = file_rows(result.changes, path)
    rejects = file_rows(result.rejects, path)
    value_cols = [c for c in changes.columns if not c.startswith("_")] + ["_seq"]
    in_order = sorted(
        [(r["_source_row"], "change", r) for r in changes.iter_rows(named=True)]
        + [(r["_source_row"], "reject", r) for r in rejects.iter_rows(named=True)],
        key=lambda x: x[0],
    )
    at, spanned = 0, 0
    for row, what, r in in_order:
        if what == "reject":
            raw = neutral(r[RAW])
            assert raw, f"row {row}: a reject with no raw text"
            found = text.find(raw, at)
            assert found >= 0, f"row {row}: raw text {raw!r} is not in the file after offset {at}"
            at = found + len(raw)
            spanned += raw.count("\n") + 1
        else:
            for c in value_cols:
                v = r[c]
                if v:
                    needle = neutral(v.replace('"', '""'))
                    found = text.find(needle, at)
                    assert found >= 0, f"row {row}: value {v!r} of {c} is not in the file after {at}"
                    at = found + len(needle)
            spanned += 1 + sum((r[c] or "").count("\n") for c in value_cols)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    blank = sum(1 for line in lines if line in ("", "\r"))
    header = int(starts_with_header(text))
    assert len(lines) - blank <= spanned + header <= len(lines), (
        f"{len(lines)} lines ({blank} blank, header {header}) but the records span {spanned}"
    )


@fuzz(100, 20241203)
@given(st.data())
def test_mangled_bytes_lose_no_line(data):
    """Random bytes, CSV-ish text and valid files with hostile bytes inserted, deleted or
    replaced (quotes, delimiters, CR, NUL, invalid UTF-8, BOM): read_table does not raise, the
    manifest adds up, and every line with content is part of a change or a reject, in order.
    A zero-byte file and a directory named like a landing file ride along: the first has no
    records, the second is ignored with a reason and its content never read."""
    table = data.draw(st.sampled_from(TABLES))
    name = data.draw(st.one_of(load_name, cdc_name))
    payload = data.draw(mangled(table))
    decoys = data.draw(st.booleans()) and name not in ("LOAD000000FF.csv", "20241201-000000000.csv")
    with landing_root() as root:
        put(root, name, payload, folder=table.landing_folder)
        if decoys:
            put(root, "LOAD000000FF.csv", b"", folder=table.landing_folder)
            sneaky = root / table.landing_folder / "20241201-000000000.csv"
            sneaky.mkdir()
            put(sneaky, "LOAD00000001.csv", payload, folder=".")
        result = read(root, table)
    path = f"{table.landing_folder}/{name}"
    records = assert_accounted(result, table)
    assert path in records
    assert_every_line_is_in_a_record(result, path, payload)
    if decoys:
        assert records[f"{table.landing_folder}/LOAD000000FF.csv"] == 0
        dir_path = f"{table.landing_folder}/20241201-000000000.csv"
        assert dir_path not in records
        assert sum(entry.startswith(dir_path) for entry in result.ignored) == 1, result.ignored
        assert not any(p.startswith(dir_path + "/") for p in result.changes["_source_file"].to_list())


# --- 4. gzip: truncated, damaged, concatenated ----------------------------------------------------


def readable_prefix(raw: bytes) -> tuple[bytes, bool]:
    """What zlib can get out of gzip bytes, member after member, and whether it all decoded
    cleanly (the independent oracle for truncation)."""
    out, rest, clean = [], raw, True
    while rest:
        d = zlib.decompressobj(wbits=31)
        try:
            out.append(d.decompress(rest))
            out.append(d.flush())
        except zlib.error:
            return b"".join(out), False
        if not d.eof:
            return b"".join(out), False
        rest = d.unused_data
    return b"".join(out), clean


@st.composite
def gzip_case(draw):
    table = draw(st.sampled_from(TABLES))
    name = draw(st.one_of(load_name, cdc_name)) + ".gz"
    rs = draw(recs(table, name.startswith("LOAD"), max_size=8))
    lines = [render(table, r, False) for r in rs]
    plain = ("".join(line + "\n" for line in lines)).encode()
    raw = draw(gzipped(plain))
    damage = draw(st.sampled_from(["none", "truncate", "flip", "garbage_after"]))
    if damage == "truncate" and raw:
        raw = raw[: draw(st.integers(1, len(raw) - 1))]  # zero bytes would be an empty file
    elif damage == "flip" and raw:
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1 :]
    elif damage == "garbage_after":
        raw += draw(st.binary(min_size=1, max_size=20).filter(lambda b: b.strip(b"\x00")))
    return table, name, rs, lines, plain, raw


def read_gzip_case(case):
    table, name, _, _, _, raw = case
    with landing_root() as root:
        put(root, name, raw, folder=table.landing_folder)
        return read(root, table)


@fuzz(80, 20241204)
@given(gzip_case())
def test_damaged_gzip_loses_nothing_silently(case):
    """Truncated, bit-flipped, or followed by garbage; one member or several: read_table does
    not raise, every change is the record written at that row (no garbage, no shifted rows),
    every record zlib can still decompress is read, and when the stream is not clean a reject
    says so (gzip / truncated / damaged)."""
    table, name, rs, lines, plain, raw = case
    result = read_gzip_case(case)
    path = f"{table.landing_folder}/{name}"
    assert_manifest_matches_frames(result, table)
    prefix, clean = readable_prefix(raw)
    changes = file_rows(result.changes, path)
    cols = [*table.column_names, "_op", "_commit_ts", "_seq"]
    for row in changes.select(["_source_row", *cols]).iter_rows(named=True):
        k = row.pop("_source_row")
        assert 1 <= k <= len(rs) and row == rs[k - 1].expected(table), (k, row)
    if clean:
        assert prefix == plain
        assert result.rejects.is_empty(), result.rejects.to_dicts()
        assert len(changes) == len(rs)
        assert_records_add_up(result)
    else:
        words = ("gzip", "truncat", "damag", "compress")
        assert any(any(w in r.lower() for w in words) for r in result.rejects["reason"].to_list()), (
            result.rejects.to_dicts()
        )
        if prefix == plain[: len(prefix)]:  # every record that still decompresses whole is read
            ends = [len("".join(line + "\n" for line in lines[: k + 1]).encode()) for k in range(len(lines))]
            complete = sum(end <= len(prefix) for end in ends)
            assert changes["_source_row"].to_list()[:complete] == list(range(1, complete + 1))


@fuzz(40, 20241207)
@given(gzip_case())
def test_damaged_gzip_manifest_adds_up(case):
    """However the gzip stream is damaged, the manifest of the file still adds up: records =
    changes + rejects, rows 1..records (CONTRACT 3: data records = bronze rows + rejects)."""
    result = read_gzip_case(case)
    assert_accounted(result, case[0])


def test_truncated_gzip_manifest_adds_up():
    """A gzip stream cut before its 8-byte trailer: all 3 records decompress. The reader adds
    a reject saying records may be missing; the manifest must then still add up per file
    (records = changes + rejects) with rows 1..records."""
    lines = [render(ORDER, Rec("U", "2024-12-08 22:15:00", INGESTED, ("1",) * 8, None), False)] * 3
    raw = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)[:-8]
    with landing_root() as root:
        put(root, "20241208-221500123.csv.gz", raw, folder=ORDER.landing_folder)
        result = read(root, ORDER)
    assert len(result.changes) == 3
    assert_accounted(result, ORDER)


def test_truncated_gzip_with_header_numbers_the_missing_records_after_the_last_data_row():
    """Header rows are not counted (CONTRACT 3: `_source_row` is 1-based, header not counted),
    so the reject standing for the records lost in a truncated stream follows the last data
    row: with a header and 2 data rows it is row 3, not row 4."""
    header = ",".join(header_names(ORDER, True))
    lines = [header] + [render(ORDER, Rec("U", "2024-12-08 22:15:00", INGESTED, ("1",) * 8, None), False)] * 2
    raw = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)[:-8]
    with landing_root() as root:
        put(root, "20241208-221500123.csv.gz", raw, folder=ORDER.landing_folder)
        result = read(root, ORDER)
    assert result.changes["_source_row"].to_list() == [1, 2]
    rows = sorted(result.changes["_source_row"].to_list() + result.rejects["_source_row"].to_list())
    assert rows == list(range(1, len(rows) + 1)), rows


# --- 5. enormous fields ------------------------------------------------------------------------


@fuzz(4, 20241205)
@given(
    st.sampled_from([1, 2, 5]),
    st.text(st.sampled_from('ab,"\n\r\x00é😀 '), min_size=1, max_size=6),
    st.booleans(),
)
def test_enormous_fields_arrive_whole(megabytes, pattern, with_bad_quote):
    """A 1-5 MB field full of quotes, commas and newlines, between clean records, on the fast
    path and (with a stray quote elsewhere in the file) on the record-by-record path: it
    arrives whole in bronze, an enormous broken record is one reject with all its text, and
    the records around them are not disturbed."""
    big = pattern * (megabytes * 1024 * 1024 // len(pattern.encode()) + 1)
    ts = "2024-12-08 22:15:00.5"
    base = {c: "1" for c in ORDER.column_names}
    lines = [
        record(ORDER, "U", ts, base),
        record(ORDER, "U", ts, {**base, "status": big, "currency": ""}),
        record(ORDER, "I", ts, {**base, "currency": None}),
    ]
    if with_bad_quote:
        one_line = big.replace('"', "'").replace("\n", " ").replace("\r", " ")
        lines.append('U"' + record(ORDER, "U", ts, {**base, "status": one_line})[1:])  # stray quote
    with landing_root() as root:
        put(root, "20241208-221500123.csv", ("\n".join(lines) + "\n").encode(), folder=ORDER.landing_folder)
        result = read(root, ORDER)
    assert_accounted(result, ORDER)
    got = result.changes.sort("_source_row")
    assert got["_source_row"].to_list() == [1, 2, 3]
    assert got["status"].to_list() == ["1", big, "1"]
    assert got["currency"].to_list() == ["1", "", None]
    if with_bad_quote:
        assert result.rejects["_source_row"].to_list() == [4]
        assert result.rejects[RAW][0] == lines[3]
    else:
        assert result.rejects.is_empty()


# --- 6. zero-byte files, directories named like landing files ------------------------------------


def test_zero_byte_blank_and_header_only_files_and_landing_named_directories():
    """Zero-byte files (plain and .gz), a file of blank lines and a header-only file have no
    records and no rejects; directories named `20241201-000000000.csv` or `LOAD00000001.csv.gz`
    are ignored with a reason and the records inside them are never read."""
    folder = ORDER.landing_folder
    good = render(ORDER, Rec("U", "2024-12-08 22:15:00", INGESTED, ("7",) * 8, None), False)
    with landing_root() as root:
        put(root, "20241208-000000000.csv", b"", folder=folder)
        put(root, "20241208-000000001.csv.gz", b"", folder=folder)
        put(root, "20241208-000000002.csv", b"\n\r\n\n", folder=folder)
        put(root, "20241208-000000003.csv", (",".join(header_names(ORDER, True)) + "\r\n").encode(), folder=folder)
        put(root, "20241208-000000004.csv.gz", gzip.compress(b""), folder=folder)
        for d in ("20241201-000000000.csv", "LOAD00000001.csv.gz"):
            (root / folder / d).mkdir(parents=True)
            put(root / folder / d, "20241201-000000000.csv", (good + "\n").encode(), folder=".")
        result = read(root, ORDER)
    records = assert_accounted(result, ORDER)
    assert result.changes.is_empty() and result.rejects.is_empty(), result.rejects.to_dicts()
    assert records == {f"{folder}/20241208-00000000{k}.csv" + (".gz" if k in (1, 4) else ""): 0 for k in range(5)}
    for d in ("20241201-000000000.csv", "LOAD00000001.csv.gz"):
        assert sum(e.startswith(f"{folder}/{d}:") for e in result.ignored) == 1, result.ignored


# --- 7. the same records spread over many files, landed twice ------------------------------------


@st.composite
def spread(draw):
    table = draw(st.sampled_from(TABLES))
    rs = draw(recs(table, load=False, max_size=12).filter(bool))
    def split():
        cuts = sorted(set(draw(st.lists(st.integers(1, len(rs)), max_size=len(rs)))))
        bounds = [0, *cuts, len(rs)]
        return [rs[a:b] for a, b in pairwise(bounds) if b > a]
    return table, rs, split(), split(), draw(st.lists(st.booleans(), min_size=12, max_size=12))


def multiset(frame: pl.DataFrame, table: SourceTable) -> Counter:
    return Counter(frame.select([*table.column_names, "_op", "_commit_ts", "_seq"]).iter_rows())


def land_groups(root: Path, table: SourceTable, groups: list[list[Rec]], gz_flags: list[bool]) -> list[str]:
    names = []
    for k, group in enumerate(groups):
        name = f"20241208-{k:06d}000.csv" + (".gz" if gz_flags[k % len(gz_flags)] else "")
        text = "".join(render(table, r, False) + "\n" for r in group).encode()
        put(root, name, gzip.compress(text, mtime=0) if name.endswith(".gz") else text, folder=table.landing_folder)
        names.append(name)
    return names


@fuzz(25, 20241206)
@given(spread())
def test_same_records_over_many_files_and_landed_twice_count_once(case):
    """Records that only differ in how they are spread over files give the same changes.
    Landing every file again under the same name (and its `.gz` twin with the same content)
    is not new data: same changes, same manifest counts. The same content under a new name is
    a re-delivery: its records count again, as records of that file (CONTRACT 2)."""
    table, rs, groups_a, groups_b, gz_flags = case
    expected = Counter(tuple(r.expected(table).values()) for r in rs)
    with landing_root() as a, landing_root() as b:
        land_groups(a, table, groups_a, gz_flags)
        names_b = land_groups(b, table, groups_b, gz_flags)
        first_a, first_b = read(a, table), read(b, table)
        for result in (first_a, first_b):
            assert_accounted(result, table)
            assert result.rejects.is_empty()
            assert multiset(result.changes, table) == expected

        # Landed twice under the same names: same bytes again, plus a .gz / plain twin.
        land_groups(b, table, groups_b, gz_flags)
        for name in names_b:
            src = b / table.landing_folder / name
            twin = name.removesuffix(".gz") if name.endswith(".gz") else name + ".gz"
            plain = gzip.decompress(src.read_bytes()) if name.endswith(".gz") else src.read_bytes()
            put(b, twin, plain if twin.endswith(".csv") else gzip.compress(plain), folder=table.landing_folder)
        again = read(b, table)
        assert_accounted(again, table)
        assert multiset(again.changes, table) == expected
        assert again.rejects.is_empty()
        assert sum(again.manifest["records"].to_list()) == len(rs)
        assert len(again.ignored) == len(names_b), again.ignored

        # The same content under a new, later name: a re-delivery, counted as that file's.
        last = b / table.landing_folder / names_b[-1]
        put(b, "20241209-000000000.csv" + (".gz" if last.name.endswith(".gz") else ""), last.read_bytes(),
            folder=table.landing_folder)
        redelivered = read(b, table)
        assert_accounted(redelivered, table)
        assert sum(redelivered.manifest["records"].to_list()) == len(rs) + len(groups_b[-1])
