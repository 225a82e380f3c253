"""The landing reader against CONTRACT sections 2 and 3, on hand-written landing files.

Every expectation below is computed by hand from the contract: which records become bronze
rows (`changes`), which become `rejects`, their `_source_row`, their values as landed text.
The last tests read the real AWS DMS files in /work/shared/dms-samples.
"""

from __future__ import annotations

import gzip
import re
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from lakehouse_assets.landing.files import LocalLandingStore
from lakehouse_assets.landing.reader import read_table
from lakehouse_assets.sources import Column, PgType, SourceTable, TABLES_BY_NAME
from lakehouse_assets_tests import northwind
from lakehouse_assets_tests.landing_builder import BAD_TS, RAW, put, record, write

pytestmark = pytest.mark.unit

ORDER = TABLES_BY_NAME["core_order"]
FOLDER = "public/core_order"
TS = "2024-12-08 22:15:00"
INGESTED = datetime(2024, 12, 9, 6, 0, tzinfo=timezone.utc)
SAMPLES = Path("/work/shared/dms-samples")
HEADER = ["Op", "_dms_commit_ts", *ORDER.column_names, "_dms_seq"]
CDC = "20241208-221500123.csv"
LOAD = "LOAD00000001.csv"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def rec(i, op="I", ts=TS, seq=None, **over) -> str:
    """One core_order record (11 fields with Op, 10 without) as landed text."""
    values = {
        "id": str(i),
        "tenant_id": "1",
        "customer_id": "10",
        "status": "paid",
        "currency": "EUR",
        "total_amount": "12.50",
        "created_at": "2024-12-08 10:00:00",
        "updated_at": "2024-12-08 10:00:00",
    }
    values.update(over)
    return record(ORDER, op, ts, values, seq)


def read(root: Path, table: SourceTable = ORDER):
    return read_table(LocalLandingStore(str(root)), table, INGESTED)


def rows(frame: pl.DataFrame, *cols: str) -> list[tuple]:
    return [tuple(r) for r in frame.sort("_source_file", "_source_row").select(cols).iter_rows()]


def reject_rows(result) -> list[tuple[str, int]]:
    return rows(result.rejects, "_source_file", "_source_row")


def reasons(result) -> list[str]:
    return result.rejects.sort("_source_file", "_source_row")["reason"].to_list()


def path(name: str) -> str:
    return f"{FOLDER}/{name}"


# --- file names (CONTRACT 2: LOAD00000001.csv, YYYYMMDD-HHMMSSmmm.csv, optional .gz) -------------


def test_load_and_cdc_names_are_read_other_names_ignored_and_reported(tmp_path):
    write(tmp_path, ORDER, "LOAD00000001.csv", [rec(1, op=None)])
    write(tmp_path, ORDER, "LOAD0000000A.csv.gz", [rec(2)], gz=True)
    write(tmp_path, ORDER, "20241208-221500123.csv", [rec(3, op="U")])
    write(tmp_path, ORDER, "20241208-221500456.csv.gz", [rec(4, op="D")], gz=True)
    ignored_names = [
        "notes.txt",
        "LOAD0000001.csv",  # 7 hex digits
        "LOAD000000001.csv",  # 9 hex digits
        "LOAD0000000G.csv",  # G is not hex
        "LOAD00000001.csv.bak",
        "LOAD00000001.json",
        "20241208-2215001.csv",  # 7 time digits
        "20241208221500123.csv",  # no dash
        "x20241208-221500123.csv",
        "20241208-221500123.csv.zip",
    ]
    for k, name in enumerate(ignored_names):
        write(tmp_path, ORDER, name, [rec(100 + k)])
    # A directory named like a CDC file, with a valid-looking file inside: not read.
    (tmp_path / FOLDER / "20241208-221500789.csv").mkdir()
    write(tmp_path / FOLDER / "20241208-221500789.csv", ORDER, "LOAD00000001.csv", [rec(99)])
    ignored_names.append("20241208-221500789.csv")

    result = read(tmp_path)

    assert sorted(rows(result.changes, "id", "_op", "_source_file", "_source_row")) == [
        ("1", "I", path("LOAD00000001.csv"), 1),
        ("2", "I", path("LOAD0000000A.csv.gz"), 1),
        ("3", "U", path("20241208-221500123.csv"), 1),
        ("4", "D", path("20241208-221500456.csv.gz"), 1),
    ]
    assert result.rejects.is_empty()
    assert len(result.ignored) == len(ignored_names)
    for name in ignored_names:
        pattern = re.compile(rf"(^|/){re.escape(name)}(?![\w.])")
        assert sum(bool(pattern.search(entry)) for entry in result.ignored) == 1, name


# --- gzip ----------------------------------------------------------------------------------


def test_gz_file_reads_like_the_plain_file(tmp_path):
    lines = [rec(1, op=None), rec(2, op=None, currency="a,b"), rec(3, op=None, status="x\ny")]
    write(tmp_path, ORDER, "LOAD00000001.csv.gz", lines, gz=True)
    result = read(tmp_path)
    assert rows(result.changes, "_source_file", "_source_row", "id", "_op", "status", "currency") == [
        (path("LOAD00000001.csv.gz"), 1, "1", "I", "paid", "EUR"),
        (path("LOAD00000001.csv.gz"), 2, "2", "I", "paid", "a,b"),
        (path("LOAD00000001.csv.gz"), 3, "3", "I", "x\ny", "EUR"),
    ]
    assert result.rejects.is_empty()


def test_gz_of_concatenated_members_is_one_file(tmp_path):
    first = (rec(1, op="U") + "\n").encode()
    second = (rec(2, op="U") + "\n" + rec(3, op="U") + "\n").encode()
    put(tmp_path, "20241208-221500123.csv.gz", gzip.compress(first) + gzip.compress(second))
    result = read(tmp_path)
    assert rows(result.changes, "_source_row", "id") == [(1, "1"), (2, "2"), (3, "3")]
    assert result.rejects.is_empty()


def _stored_gzip(data: bytes) -> bytes:
    # compresslevel 0: one stored deflate block after the 10-byte gzip header and the 5-byte
    # block header, so byte k of the data is byte 15 + k of the file.
    return gzip.compress(data, compresslevel=0, mtime=0)


@pytest.mark.parametrize("cut_inside_record", [True, False])
def test_truncated_gzip_loss_shows_up_as_rejects(tmp_path, cut_inside_record):
    r1, r2, r3 = rec(1, op="U"), rec(2, op="U"), rec(3, op="U")
    data = f"{r1}\n{r2}\n{r3}\n".encode()
    keep = len(r1) + 1 + (20 if cut_inside_record else 0)
    put(tmp_path, CDC + ".gz", _stored_gzip(data)[: 15 + keep])

    result = read(tmp_path)

    assert rows(result.changes, "_source_row", "id") == [(1, "1")]
    assert len(result.rejects) >= 1
    assert set(result.rejects["_source_file"]) == {path(CDC + ".gz")}
    assert 1 not in result.rejects["_source_row"].to_list()
    assert any("gzip" in r.lower() or "truncat" in r.lower() for r in reasons(result))
    if cut_inside_record:
        partial = result.rejects.filter(pl.col("_source_row") == 2)
        assert partial[RAW].to_list() == [r2[:20]]
    assert result.changes.filter(pl.col("id").is_in(["2", "3"])).is_empty()


def test_gzip_missing_only_its_trailer_keeps_every_record(tmp_path):
    lines = [rec(1, op="U"), rec(2, op="U"), rec(3, op="U")]
    data = ("\n".join(lines) + "\n").encode()
    put(tmp_path, CDC + ".gz", gzip.compress(data, mtime=0)[:-8])
    result = read(tmp_path)
    assert rows(result.changes, "_source_row", "id") == [(1, "1"), (2, "2"), (3, "3")]
    assert not set(result.rejects["_source_row"].to_list()) & {1, 2, 3}


def test_file_named_gz_that_is_not_gzip_is_rejected_not_silently_empty(tmp_path):
    put(tmp_path, "LOAD00000001.csv.gz", (rec(1) + "\n" + rec(2) + "\n").encode())
    result = read(tmp_path)
    assert result.changes.is_empty()
    assert len(result.rejects) >= 1
    assert set(result.rejects["_source_file"]) == {path("LOAD00000001.csv.gz")}
    assert set(result.rejects["table_name"]) == {"core_order"}
    assert all(r for r in reasons(result))
    assert any("gzip" in r.lower() for r in reasons(result))


# --- header row (DMS AddColumnName) ---------------------------------------------------------


@pytest.mark.parametrize(
    "name, header, op",
    [
        ("LOAD00000001.csv", HEADER[1:], None),  # full load, header without Op, rows without Op
        ("LOAD00000001.csv", [h.upper() for h in HEADER], "I"),  # with Op, upper case
        (CDC, ["oP", "_DMS_Commit_TS", *ORDER.column_names, "_Dms_Seq"], "U"),  # mixed case
        (CDC, [h.upper() for h in HEADER[1:]], "U"),  # CDC file, header without Op
    ],
)
def test_header_row_is_skipped_and_not_counted(tmp_path, name, header, op):
    write(tmp_path, ORDER, name, [",".join(header), rec(1, op=op), rec(2, op=op)])
    result = read(tmp_path)
    assert rows(result.changes, "_source_row", "id", "_op") == [(1, "1", op or "I"), (2, "2", op or "I")]
    assert result.rejects.is_empty()
    assert result.manifest["records"].to_list() == [2]


def test_header_only_file_has_no_records(tmp_path):
    write(tmp_path, ORDER, CDC, [",".join(HEADER)])
    result = read(tmp_path)
    assert result.changes.is_empty() and result.rejects.is_empty()
    assert result.manifest["records"].to_list() == [0]


def _swap(names, a, b):
    names = list(names)
    names[a], names[b] = names[b], names[a]
    return names


@pytest.mark.parametrize(
    "name, header",
    [
        (CDC, [*HEADER[:-1], "seq"]),  # last name differs
        (CDC, _swap(HEADER, 2, 3)),  # right names, wrong order
        (CDC, [*HEADER, "extra"]),  # one name too many
        (CDC, ["Op", *HEADER[2:]]),  # _dms_commit_ts missing
        ("LOAD00000001.csv", [h + " " for h in HEADER[1:]]),  # names with a trailing space
        ("LOAD00000001.csv", ["commit_ts", *HEADER[2:]]),
    ],
)
def test_header_like_first_record_that_is_not_the_layout_is_rejected(tmp_path, name, header):
    first = ",".join(header)
    op = "U" if name == CDC else None
    write(tmp_path, ORDER, name, [first, rec(1, op=op), rec(2, op=op)])
    result = read(tmp_path)
    assert rows(result.rejects, "_source_row", RAW) == [(1, first)]
    assert reasons(result)[0]
    assert rows(result.changes, "_source_row", "id") == [(2, "1"), (3, "2")]


def test_header_after_the_first_record_is_a_rejected_record(tmp_path):
    header = ",".join(HEADER)
    write(tmp_path, ORDER, CDC, [rec(1, op="U"), header, rec(2, op="U")])
    result = read(tmp_path)
    assert rows(result.rejects, "_source_row", RAW) == [(2, header)]
    assert rows(result.changes, "_source_row", "id") == [(1, "1"), (3, "2")]


# --- blank lines ----------------------------------------------------------------------------


def test_blank_lines_are_not_records_and_not_counted(tmp_path):
    write(tmp_path, ORDER, CDC, ["", rec(1, op="U"), "", "", rec(2, op="U"), "", ""])
    write(tmp_path, ORDER, "20241208-221600000.csv", ["", ",".join(HEADER), "", rec(3, op="U")])
    write(tmp_path, ORDER, "20241208-221700000.csv", ["", "", ""])
    result = read(tmp_path)
    assert rows(result.changes, "_source_file", "_source_row", "id") == [
        (path(CDC), 1, "1"),
        (path(CDC), 2, "2"),
        (path("20241208-221600000.csv"), 1, "3"),
    ]
    assert result.rejects.is_empty()
    manifest = result.manifest.sort("_source_file")
    assert manifest.select("_source_file", "records").rows() == [
        (path(CDC), 2),
        (path("20241208-221600000.csv"), 1),
        (path("20241208-221700000.csv"), 0),
    ]


# --- RFC 4180 -------------------------------------------------------------------------------


def test_rfc4180_quoting(tmp_path):
    all_quoted = ",".join(
        f'"{v}"'
        for v in ["U", TS, "4", "1", "10", "paid", "EUR", "1.00", "2024-12-08 10:00:00", "2024-12-08 10:00:00", "7"]
    )
    lines = [
        rec(1, op="U", currency="a,b", status='say "hi"'),
        rec(2, op="U", status="line1\nline2"),
        rec(3, op="U", status="", currency=None),  # "" is the empty string, empty is NULL
        all_quoted,
        rec(5, op="U", status='"', currency=","),
        rec(6, op="U", status="a\n\nb,\n"),  # a blank line inside quotes is not a blank line
        rec(7, op="U"),
    ]
    assert lines[2].count('""') == 1
    write(tmp_path, ORDER, CDC, lines)
    result = read(tmp_path)
    assert result.rejects.is_empty()
    assert rows(result.changes, "_source_row", "_op", "id", "status", "currency", "_seq") == [
        (1, "U", "1", 'say "hi"', "a,b", None),
        (2, "U", "2", "line1\nline2", "EUR", None),
        (3, "U", "3", "", None, None),
        (4, "U", "4", "paid", "EUR", "7"),
        (5, "U", "5", '"', ",", None),
        (6, "U", "6", "a\n\nb,\n", "EUR", None),
        (7, "U", "7", "paid", "EUR", None),
    ]


def test_crlf_line_endings(tmp_path):
    lines = [
        rec(1, op="U"),  # last field (seq) empty: NULL, not "\r"
        rec(2, op="U", status="x\r\ny"),  # CRLF inside quotes is data
        "",
        rec(3, op="U", seq="42"),
        rec(4, op="U") + '"9"',  # quoted last field before CRLF
    ]
    put(tmp_path, CDC, ("\r\n".join(lines) + "\r\n").encode())
    result = read(tmp_path)
    assert result.rejects.is_empty()
    assert rows(result.changes, "_source_row", "id", "status", "updated_at", "_seq") == [
        (1, "1", "paid", "2024-12-08 10:00:00", None),
        (2, "2", "x\r\ny", "2024-12-08 10:00:00", None),
        (3, "3", "paid", "2024-12-08 10:00:00", "42"),
        (4, "4", "paid", "2024-12-08 10:00:00", "9"),
    ]


@pytest.mark.parametrize("with_bad_quote", [False, True])
def test_crlf_rejects_keep_their_raw_text_without_the_line_ending(tmp_path, with_bad_quote):
    bad_op = rec(2, op="X")
    # With a bad quote in the file the sequential parser reads it; without, the fast path.
    stray = rec(4, op="U").replace(",paid,", ',pa"id,') if with_bad_quote else rec(4, op="U", ts="24-12-08 1:00:00")
    lines = [rec(1, op="U"), bad_op, rec(3, op="U", status="q,r"), stray, rec(5, op="U")]
    put(tmp_path, CDC, ("\r\n".join(lines) + "\r\n").encode())
    result = read(tmp_path)
    assert rows(result.changes, "_source_row", "id", "status", "updated_at") == [
        (1, "1", "paid", "2024-12-08 10:00:00"),
        (3, "3", "q,r", "2024-12-08 10:00:00"),
        (5, "5", "paid", "2024-12-08 10:00:00"),
    ]
    assert rows(result.rejects, "_source_row", RAW) == [(2, bad_op), (4, stray)]


def test_last_record_without_final_newline(tmp_path):
    put(tmp_path, CDC, (rec(1, op="U") + "\n" + rec(2, op="U", seq="5")).encode())
    result = read(tmp_path)
    assert rows(result.changes, "_source_row", "id", "_seq") == [(1, "1", None), (2, "2", "5")]
    assert result.rejects.is_empty()


# --- Op and column counts -------------------------------------------------------------------


def test_full_load_without_op_is_insert_cdc_without_op_is_rejected(tmp_path):
    write(tmp_path, ORDER, LOAD, [rec(1, op=None), rec(2, op="I"), rec(3, op=None, seq="")])
    cdc_no_op = rec(5, op=None)
    write(tmp_path, ORDER, CDC, [rec(4, op="U"), cdc_no_op, rec(6, op="D")])
    result = read(tmp_path)
    assert rows(result.changes, "_source_file", "_source_row", "id", "_op", "_seq") == [
        (path(CDC), 1, "4", "U", None),
        (path(CDC), 3, "6", "D", None),
        (path(LOAD), 1, "1", "I", None),
        (path(LOAD), 2, "2", "I", None),
        (path(LOAD), 3, "3", "I", ""),
    ]
    assert rows(result.rejects, "_source_file", "_source_row", RAW) == [(path(CDC), 2, cdc_no_op)]
    assert "column" in reasons(result)[0].lower()


def test_wrong_column_counts_are_rejected(tmp_path):
    too_few = rec(2, op="U").rsplit(",", 1)[0]  # 10 fields
    too_many = rec(3, op="U") + ",extra"  # 12 fields
    far_too_many = rec(4, op="U") + ",a,b,c,d,e,f,g,h,i,j,k"
    cdc = [rec(1, op="U"), too_few, too_many, "garbage", far_too_many, rec(6, op="U")]
    write(tmp_path, ORDER, CDC, cdc)
    load_nine = rec(7, op=None).rsplit(",", 1)[0]  # 9 fields: no Op and no seq
    load_twelve = rec(8, op="I") + ","
    write(tmp_path, ORDER, LOAD, [load_nine, rec(9, op=None), load_twelve])
    result = read(tmp_path)
    assert rows(result.changes, "_source_file", "_source_row", "id") == [
        (path(CDC), 1, "1"),
        (path(CDC), 6, "6"),
        (path(LOAD), 2, "9"),
    ]
    assert rows(result.rejects, "_source_file", "_source_row", RAW) == [
        (path(CDC), 2, too_few),
        (path(CDC), 3, too_many),
        (path(CDC), 4, "garbage"),
        (path(CDC), 5, far_too_many),
        (path(LOAD), 1, load_nine),
        (path(LOAD), 3, load_twelve),
    ]
    assert all("column" in r.lower() for r in reasons(result))


def test_op_must_be_exactly_i_u_or_d(tmp_path):
    ops = ["I", "U", "D", "i", "X", "", "II", " I", "u", "D "]
    write(tmp_path, ORDER, CDC, [rec(k + 1, op=op) for k, op in enumerate(ops)])
    result = read(tmp_path)
    assert rows(result.changes, "_source_row", "_op") == [(1, "I"), (2, "U"), (3, "D")]
    assert [r for _, r in reject_rows(result)] == [4, 5, 6, 7, 8, 9, 10]
    assert all("op" in r.lower() for r in reasons(result))


# --- _dms_commit_ts -------------------------------------------------------------------------

GOOD_TS = [
    ("2024-12-08 22:15:00", utc(2024, 12, 8, 22, 15, 0)),
    ("2024-12-08 22:15:00.1", utc(2024, 12, 8, 22, 15, 0, 100000)),
    ("2024-12-08 22:15:00.12", utc(2024, 12, 8, 22, 15, 0, 120000)),
    ("2024-12-08 22:15:00.123", utc(2024, 12, 8, 22, 15, 0, 123000)),
    ("2024-12-08 22:15:00.1234", utc(2024, 12, 8, 22, 15, 0, 123400)),
    ("2024-12-08 22:15:00.12345", utc(2024, 12, 8, 22, 15, 0, 123450)),
    ("2024-12-08 22:15:00.123456", utc(2024, 12, 8, 22, 15, 0, 123456)),
    ("2024-12-08 00:00:00.000001", utc(2024, 12, 8, 0, 0, 0, 1)),
    ("2024-02-29 23:59:59.999999", utc(2024, 2, 29, 23, 59, 59, 999999)),
]


def test_commit_ts_formats(tmp_path, monkeypatch):
    # A local time zone far from UTC: the text is UTC whatever the machine says.
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        lines = [rec(k + 1, op="U", ts=t) for k, (t, _) in enumerate(GOOD_TS)]
        lines += [rec(len(GOOD_TS) + k + 1, op="U", ts=t) for k, t in enumerate(BAD_TS)]
        write(tmp_path, ORDER, CDC, lines)
        result = read(tmp_path)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert result.changes.schema["_commit_ts"].time_zone == "UTC"
    assert rows(result.changes, "_source_row", "_commit_ts") == [
        (k + 1, expected) for k, (_, expected) in enumerate(GOOD_TS)
    ]
    assert [r for _, r in reject_rows(result)] == list(range(len(GOOD_TS) + 1, len(lines) + 1))
    assert all("_dms_commit_ts" in r for r in reasons(result))


def test_load_rows_commit_ts_is_parsed_too(tmp_path):
    write(tmp_path, ORDER, LOAD, [rec(1, op=None, ts="2024-12-01 23:59:59.5"), rec(2, op=None, ts="2024-12-01T23:59:59")])
    result = read(tmp_path)
    assert rows(result.changes, "_source_row", "_commit_ts") == [(1, utc(2024, 12, 1, 23, 59, 59, 500000))]
    assert [r for _, r in reject_rows(result)] == [2]


# --- bytes that are not UTF-8, bad quoting, NUL -------------------------------------------------


def test_undecodable_bytes_reject_only_their_record(tmp_path):
    r1 = rec(1, op="U").encode()
    r2 = rec(2, op="U", currency="E\xffR").encode("latin-1")  # lone 0xFF
    r3 = rec(3, op="U", currency="Münster").encode()
    r4 = rec(4, op="U", status="caf\xc3", currency="x").encode("latin-1")  # truncated sequence
    r5 = rec(5, op="U", status="a\nb\xfe\nc").encode("latin-1")  # bad byte in a multi-line field
    r6 = rec(6, op="U").encode()
    put(tmp_path, CDC, b"\n".join([r1, r2, r3, r4, r5, r6]) + b"\n")
    result = read(tmp_path)
    assert rows(result.changes, "_source_row", "id", "currency") == [
        (1, "1", "EUR"),
        (3, "3", "Münster"),
        (6, "6", "EUR"),
    ]
    assert [r for _, r in reject_rows(result)] == [2, 4, 5]
    raws = result.rejects.sort("_source_row")[RAW].to_list()
    assert raws[0].startswith("U,2024-12-08 22:15:00,2,1,10,paid,E") and raws[0].endswith(",12.50,2024-12-08 10:00:00,2024-12-08 10:00:00,")
    assert raws[1].startswith("U,2024-12-08 22:15:00,4,1,10,") and raws[1].endswith(",x,12.50,2024-12-08 10:00:00,2024-12-08 10:00:00,")
    assert raws[2].startswith('U,2024-12-08 22:15:00,5,1,10,"a\nb') and raws[2].endswith("2024-12-08 10:00:00,")
    assert all(("utf" in r.lower() or "decod" in r.lower()) for r in reasons(result))


def test_undecodable_byte_at_end_of_file(tmp_path):
    put(tmp_path, CDC, (rec(1, op="U") + "\n").encode() + rec(2, op="U").encode() + b"\xc3")
    result = read(tmp_path)
    assert rows(result.changes, "_source_row", "id") == [(1, "1")]
    assert [r for _, r in reject_rows(result)] == [2]


def test_bad_quoting_rejects_the_record_and_keeps_the_following_ones(tmp_path):
    stray = rec(2, op="U").replace(",paid,", ',pa"id,')
    after_close = rec(4, op="U").replace(",paid,", ',"paid"x,')
    even_stray = rec(5, op="U").replace(",paid,", ',p"a"id,')
    unterminated = rec(8, op="U").replace(",paid,", ',"paid,')
    lines = [
        rec(1, op="U"),
        stray,
        rec(3, op="U", currency="a,b"),
        after_close,
        even_stray,
        rec(6, op="U", status="multi\nline"),
        rec(7, op="U"),
        unterminated,
        rec(9, op="U"),
        rec(10, op="U"),
    ]
    assert stray.count('"') == 1 and unterminated.count('"') == 1
    write(tmp_path, ORDER, CDC, lines)
    result = read(tmp_path)
    assert rows(result.changes, "_source_row", "id", "status", "currency") == [
        (1, "1", "paid", "EUR"),
        (3, "3", "paid", "a,b"),
        (6, "6", "multi\nline", "EUR"),
        (7, "7", "paid", "EUR"),
        (9, "9", "paid", "EUR"),
        (10, "10", "paid", "EUR"),
    ]
    assert rows(result.rejects, "_source_row", RAW) == [
        (2, stray),
        (4, after_close),
        (5, even_stray),
        (8, unterminated),
    ]
    assert all(reasons(result))


def test_unterminated_quote_does_not_swallow_later_records_that_hold_quotes(tmp_path):
    # The opening quote of record 2 is never closed on its line; later records quote fields
    # of their own. Record 2 is rejected; records 3 to 5 are records like any other.
    unterminated = rec(2, op="U").replace(",paid,", ',"paid,')
    lines = [rec(1, op="U"), unterminated, rec(3, op="U"), rec(4, op="U", currency="a,b"), rec(5, op="U")]
    write(tmp_path, ORDER, CDC, lines)
    result = read(tmp_path)
    assert rows(result.rejects, "_source_row", RAW) == [(2, unterminated)]
    assert rows(result.changes, "_source_row", "id", "currency") == [
        (1, "1", "EUR"),
        (3, "3", "EUR"),
        (4, "4", "a,b"),
        (5, "5", "EUR"),
    ]


def test_nul_bytes(tmp_path):
    # NUL is valid UTF-8 and not a CSV delimiter: in a text column it is landed text like any
    # other; in Op or _dms_commit_ts it makes the record unreadable.
    lines = [
        rec(1, op="U", currency="E\x00R"),
        "U\x00" + rec(2, op="U")[1:],
        rec(3, op="U", ts=TS + "\x00"),
        rec(4, op="U"),
    ]
    write(tmp_path, ORDER, CDC, lines)
    result = read(tmp_path)
    assert rows(result.changes, "_source_row", "id", "currency") == [(1, "1", "E\x00R"), (4, "4", "EUR")]
    assert [r for _, r in reject_rows(result)] == [2, 3]
    assert len(result.changes) + len(result.rejects) == 4


# --- rejects and counts ---------------------------------------------------------------------


def test_every_reject_row_carries_table_file_row_reason_and_raw(tmp_path):
    bad_op = rec(2, op="X")
    bad_ts = rec(3, op="U", ts="2024-12-08T22:15:00")
    bad_count = "U,2024-12-08 22:15:00,4"
    multi = rec(5, op="Q", status="two\nlines")
    write(tmp_path, ORDER, CDC, [rec(1, op="U"), bad_op, bad_ts, bad_count, multi])
    result = read(tmp_path)
    assert rows(result.rejects, "table_name", "_source_file", "_source_row", RAW) == [
        ("core_order", path(CDC), 2, bad_op),
        ("core_order", path(CDC), 3, bad_ts),
        ("core_order", path(CDC), 4, bad_count),
        ("core_order", path(CDC), 5, multi),
    ]
    for reason in reasons(result):
        assert isinstance(reason, str) and reason.strip()
    assert "op" in reasons(result)[0].lower()
    assert "_dms_commit_ts" in reasons(result)[1]
    assert "column" in reasons(result)[2].lower()
    assert str(tmp_path) not in "".join(result.rejects["_source_file"])


def test_records_in_file_equal_changes_plus_rejects(tmp_path):
    # LOAD: header + 3 good + 1 bad = 4 records (3 + 1)
    write(tmp_path, ORDER, LOAD, [",".join(HEADER[1:]), rec(1, op=None), rec(2, op=None), "junk", rec(3, op=None, status="a\nb")])
    # CDC 1: 2 good, 1 not UTF-8, 1 bad quote, blank lines = 4 records (2 + 2)
    put(
        tmp_path,
        CDC,
        b"\n".join(
            [
                rec(4, op="U").encode(),
                b"",
                rec(5, op="U", currency="\xff").encode("latin-1"),
                rec(6, op="U").replace(",paid,", ',pa"id,').encode(),
                b"",
                rec(7, op="D").encode(),
            ]
        )
        + b"\n",
    )
    # CDC 2, gzip: 1 good, 1 bad Op = 2 records (1 + 1)
    write(tmp_path, ORDER, "20241208-221600000.csv.gz", [rec(8, op="U"), rec(9, op="x")], gz=True)
    result = read(tmp_path)
    expected = {
        path(LOAD): (4, 3, 1),
        path(CDC): (4, 2, 2),
        path("20241208-221600000.csv.gz"): (2, 1, 1),
    }
    changes = dict(result.changes.group_by("_source_file").len().rows())
    rejects = dict(result.rejects.group_by("_source_file").len().rows())
    for file, (records, n_changes, n_rejects) in expected.items():
        assert changes.get(file, 0) == n_changes, file
        assert rejects.get(file, 0) == n_rejects, file
        assert n_changes + n_rejects == records
    manifest = {r[0]: r[1:] for r in result.manifest.select("_source_file", "records", "changes", "rejects").rows()}
    assert manifest == expected
    # Every record of a file has exactly one row number, 1..records.
    for file, (records, _, _) in expected.items():
        numbers = sorted(
            result.changes.filter(pl.col("_source_file") == file)["_source_row"].to_list()
            + result.rejects.filter(pl.col("_source_file") == file)["_source_row"].to_list()
        )
        assert numbers == list(range(1, records + 1)), file


def test_changes_schema_and_metadata(tmp_path):
    write(tmp_path, ORDER, CDC, [rec(1, op="U", seq="20241208221500123000000000000000061", total_amount="+1.25000000e+02")])
    result = read(tmp_path)
    assert result.changes.schema["_commit_ts"] == pl.Datetime(time_unit=result.changes.schema["_commit_ts"].time_unit, time_zone="UTC")
    for c in ORDER.column_names:
        assert result.changes.schema[c] == pl.String
    row = result.changes.row(0, named=True)
    assert {k: row[k] for k in [*ORDER.column_names, "_op", "_seq", "_source_file", "_source_row"]} == {
        "id": "1",
        "tenant_id": "1",
        "customer_id": "10",
        "status": "paid",
        "currency": "EUR",
        "total_amount": "+1.25000000e+02",  # bronze keeps the landed text
        "created_at": "2024-12-08 10:00:00",
        "updated_at": "2024-12-08 10:00:00",
        "_op": "U",
        "_seq": "20241208221500123000000000000000061",
        "_source_file": path(CDC),
        "_source_row": 1,
    }
    assert row["_commit_ts"] == utc(2024, 12, 8, 22, 15)
    assert row["_ingested_at"] == INGESTED


@pytest.mark.parametrize("name", [CDC, LOAD])
def test_file_landed_twice_plain_and_gz_is_read_once(tmp_path, name):
    op = "U" if name == CDC else None
    lines = [rec(1, op=op), rec(2, op=op)]
    write(tmp_path, ORDER, name, lines)
    write(tmp_path, ORDER, name + ".gz", lines, gz=True)
    result = read(tmp_path)
    assert sorted(result.changes["id"].to_list()) == ["1", "2"]
    assert result.changes["_source_file"].n_unique() == 1
    assert result.changes["_source_file"][0] in (path(name), path(name + ".gz"))
    assert result.rejects.is_empty()
    again = read(tmp_path)
    assert again.changes.equals(result.changes)


# --- the real DMS files ---------------------------------------------------------------------


def _northwind_root(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    for src in sorted((SAMPLES / "pg_northwind").iterdir()):
        schema, table, name = src.name.split("__")
        name = re.sub(r"\.first\d+lines", "", name)
        dest = root / schema / table / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    return root


def test_real_northwind_files(tmp_path):
    root = _northwind_root(tmp_path)
    store = LocalLandingStore(str(root))
    got = {t.name: read_table(store, t, INGESTED) for t in northwind.TABLES}
    for t, result in got.items():
        assert result.rejects.is_empty(), (t, result.rejects.to_dicts())
        assert result.ignored == []
    counts = {t: r.changes.group_by("_source_file").len().sort("_source_file").rows() for t, r in got.items()}
    assert counts == {
        "orders": [
            ("public/orders/20240612-103125108.csv", 15),
            ("public/orders/20240705-202150266.csv", 4),
            ("public/orders/LOAD00000001.csv", 25),
        ],
        "order_details": [("public/order_details/20240705-201037838.csv", 8)],
        "categories": [("public/categories/LOAD00000001.csv", 8)],
        "region": [("public/region/LOAD00000001.csv", 4)],
    }

    orders = got["orders"].changes
    cdc = orders.filter(pl.col("_source_file") == "public/orders/20240612-103125108.csv").sort("_source_row")
    assert cdc["_op"].to_list() == list("IUDIUDIUDIUUUUU")
    assert cdc["order_id"].to_list() == ["19998"] * 3 + ["19999"] * 3 + ["20000"] * 3 + ["20002"] * 6
    deletes = cdc.filter(pl.col("_op") == "D")
    assert deletes["_source_row"].to_list() == [3, 6, 9]
    non_key = [c for c in northwind.ORDERS.column_names if c != "order_id"]
    for row in deletes.iter_rows(named=True):
        assert all(row[c] is None for c in non_key), row
        assert row["before_order_id"] is None
    assert deletes["_seq"].to_list() == [
        "20240612103025850000000000000000085",
        "20240612103026480000000000000000105",
        "20240612103028760000000000000000173",
    ]
    first = cdc.row(0, named=True)
    assert first["freight"] == "+3.23800011e+01"
    assert first["ship_address"] == "59 rue de l'Abbaye"
    assert first["ship_region"] is None
    assert first["_commit_ts"] == utc(2024, 6, 12, 10, 30, 25, 104667)
    assert first["_seq"] == "20240612103025100000000000000000061"

    load = orders.filter(pl.col("_source_file") == "public/orders/LOAD00000001.csv").sort("_source_row")
    assert load["_op"].unique().to_list() == ["I"]
    assert load["_seq"].null_count() == 25
    assert load["order_id"].to_list() == [str(i) for i in range(10248, 10273)]
    assert load.row(1, named=True)["ship_name"] == "Toms Spezialitäten"
    assert load.row(1, named=True)["ship_city"] == "Münster"
    assert load.row(1, named=True)["freight"] == "+1.16099997e+01"
    assert load.row(2, named=True)["ship_address"] == "Rua do Paço, 67"
    assert load.row(0, named=True)["_commit_ts"] == utc(2024, 6, 12, 10, 28, 17, 806650)

    july = orders.filter(pl.col("_source_file") == "public/orders/20240705-202150266.csv").sort("_source_row")
    assert july.select("_op", "order_id", "before_order_id", "shipped_date").rows() == [
        ("I", "30017", None, None),
        ("U", "30018", "30017", None),
        ("U", "30019", "30018", None),
        ("U", "30020", "30019", None),
    ]

    details = got["order_details"].changes.sort("_source_row")
    assert details.select("_op", "order_id", "product_id", "before_order_id", "before_product_id").rows() == [
        ("I", "30010", "1", None, None),
        ("U", "30010", "1", None, None),
        ("U", "30010", "77", "30010", "1"),
        ("I", "30014", "1", None, None),
        ("I", "30014", "2", None, None),
        ("U", "30014", "66", "30014", "1"),
        ("I", "30014", "3", None, None),
        ("U", "30014", "77", "30014", "2"),
    ]
    assert details["unit_price"].unique().to_list() == ["+1.10000000e+01"]
    assert details["discount"].unique().to_list() == ["+0.00000000e+00"]

    categories = got["categories"].changes.sort("_source_row")
    assert categories["description"].to_list() == [
        "Soft drinks, coffees, teas, beers, and ales",
        "Sweet and savory sauces, relishes, spreads, and seasonings",
        "Desserts, candies, and sweet breads",
        "Cheeses",
        "Breads, crackers, pasta, and cereal",
        "Prepared meats",
        "Dried fruit and bean curd",
        "Seaweed and fish",
    ]
    assert categories["picture"].null_count() == 8
    assert categories["_seq"].null_count() == 8

    region = got["region"].changes.sort("_source_row")
    assert region.select("region_id", "region_description").rows() == [
        ("1", "Eastern"),
        ("2", "Western"),
        ("3", "Northern"),
        ("4", "Southern"),
    ]


def _text_table(schema: str, name: str, n_columns: int) -> SourceTable:
    cols = tuple(Column(f"c{k}", PgType.TEXT) for k in range(n_columns))
    return SourceTable(name=name, entity=name, columns=cols, primary_key=("c0",), partition_column="c0", schema=schema)


@pytest.mark.parametrize(
    "folder, n_columns, files",
    [
        # LOAD rows: 13 fields without Op; CDC rows: Op + 13 fields. 11 columns fit both widths.
        ("mysql_classicmodels", 11, {"LOAD00000001.csv": 122, "20240809-192717787.csv": 4}),
        # LOAD: header without Op + 24 rows of 11 fields; CDC: header with Op + 17 rows of 12.
        ("oracle_hr_header", 9, {"LOAD00000001.first25lines.csv": 25, "20190118-184518184.csv": 18}),
        ("misc_header", 28, {"LOAD00000001.first10lines.csv": 10}),
    ],
)
def test_other_real_samples_without_commit_ts_are_all_accounted_for(tmp_path, folder, n_columns, files):
    table = _text_table("src", "t", n_columns)
    for name in files:
        dest = tmp_path / "src" / "t" / re.sub(r"\.first\d+lines", "", name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLES / folder / name, dest)
    result = read(tmp_path, table)
    # No file has a commit timestamp column: no record is a readable change, none is lost.
    assert result.changes.is_empty()
    for name, records in files.items():
        file = "src/t/" + re.sub(r"\.first\d+lines", "", name)
        got = result.rejects.filter(pl.col("_source_file") == file)
        assert sorted(got["_source_row"].to_list()) == list(range(1, records + 1)), file
        assert got["reason"].null_count() == 0
        assert all(r.strip() for r in got["reason"])
        assert set(got["table_name"]) == {"t"}
    assert len(result.rejects) == sum(files.values())
    # Data rows are rejected for their commit timestamp (the header rows may fail on Op).
    data_reasons = result.rejects.filter(~pl.col(RAW).str.contains("(?i)employee_id|mlb_id"))["reason"]
    assert all("_dms_commit_ts" in r for r in data_reasons)
