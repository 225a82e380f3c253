"""Hostile names and values (issue "Nothing lost under bad files", item 6).

- A landing root whose path holds spaces, unicode, quotes, `$()`, `;`, globs, newlines or `..`
  components that resolve inside reads exactly like a plain one.
- Entries of a table folder that are not DMS landing files (names with `..`, shell
  characters, look-alike unicode; symlinks leaving the root; loops; FIFOs) are ignored with a
  reason and never read; read_table does not raise.
- Values that look like SQL arrive in bronze verbatim (through the whole pipeline:
  assets/test_hostile_values.py; scopes and quoting: storage/test_hostile_scopes.py).
- The S3 landing store never reads outside its prefix, whatever the keys say.
"""

from __future__ import annotations

import gzip
import json
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakehouse_assets.landing.files import LandingFile, LocalLandingStore
from lakehouse_assets.landing.reader import read_table
from lakehouse_assets.landing.s3 import S3LandingStore, check_relative
from lakehouse_assets.resources.landing import LandingZone
from lakehouse_assets.sources import TABLES_BY_NAME
from lakehouse_assets_tests.examples import fixed
from lakehouse_assets_tests.landing_builder import RAW, SQL_VALUES, order_record, put, record, write
from lakehouse_assets_tests.moto_server import aws  # noqa: F401  (fixture)

pytestmark = pytest.mark.unit

ORDER = TABLES_BY_NAME["core_order"]
FOLDER = ORDER.landing_folder
INGESTED = datetime(2024, 12, 9, 6, 0, tzinfo=timezone.utc)
TS = "2024-12-08 22:15:00"
SECRET = "SECRET-OUTSIDE-THE-LANDING-ROOT"


def order(i, op="U", ts=TS, **over) -> str:
    return order_record(i, op, ts, **over)


def read(root, table=ORDER):
    return read_table(LocalLandingStore(str(root)), table, INGESTED)


def small_zone(root: Path) -> None:
    """A LOAD file, a CDC file, a gzip CDC file and one unreadable record."""
    write(root, ORDER, "LOAD00000001.csv", [order(1, op=None), order(2, op="I", currency="a,b")])
    write(root, ORDER, "20241208-221500123.csv", [order(3), order(4, op="X"), order(5, status="x\ny")])
    write(root, ORDER, "20241208-221600000.csv.gz", [order(6, op="D")], gz=True)


def outside_file(base: Path) -> Path:
    """A valid landing file outside the landing root, full of SECRET values."""
    path = write(base, ORDER, "20241201-000000000.csv", [order(900, currency=SECRET, status=SECRET)])
    return path


def never_read(result) -> None:
    """Nothing from outside the root reached bronze or the rejects."""
    text = json.dumps(result.changes.to_dicts(), default=str) + json.dumps(result.rejects.to_dicts(), default=str)
    assert SECRET not in text


def frames(result) -> tuple:
    return (
        result.changes.sort("_source_file", "_source_row"),
        result.rejects.sort("_source_file", "_source_row"),
        result.manifest.sort("_source_file").drop("etag"),  # size and mtime: when written, not what
        sorted(result.ignored),
    )


# --- hostile landing roots ---------------------------------------------------------------------
HOSTILE_DIRS = [
    "with space",
    "ünïcødé 数据 😀",
    "it's \"quoted\"",
    "$(touch PWNED)",
    "`touch PWNED`",
    "a; touch PWNED; b",
    "x && touch PWNED || y | z > out",
    "*?[glob]{a,b}",
    "%s %n %(x)s {0}",
    "back\\slash",
    "new\nline\ttab",
    "-leading-dash",
    "~tilde",
    "..dots..",
    " leading and trailing space ",
    "'; DROP TABLE x; --",
]


@pytest.mark.parametrize("name", HOSTILE_DIRS)
def test_landing_root_with_hostile_path_reads_like_a_plain_one(tmp_path, name):
    """A landing root named with shell metacharacters, quotes, unicode, globs or newlines is a
    path like any other: the same changes, rejects, manifest and ignored entries as a plain
    root, paths relative to the root, and nothing run by a shell."""
    plain, hostile = tmp_path / "plain", tmp_path / name / "landing"
    small_zone(plain)
    small_zone(hostile)
    expected = frames(read(plain))
    got = frames(read(hostile))
    got_resource = frames(read_table(LandingZone(uri=str(hostile)).store(), ORDER, INGESTED))
    for want, have, via_resource in zip(expected, got, got_resource):
        assert have.equals(want) if isinstance(want, pl.DataFrame) else have == want
        assert via_resource.equals(want) if isinstance(want, pl.DataFrame) else via_resource == want
    assert len(expected[0]) == 5 and len(expected[1]) == 1
    assert all(not p.startswith(str(tmp_path)) for p in got[0]["_source_file"].to_list())
    assert not list(tmp_path.rglob("PWNED")) and not Path("PWNED").exists()


def test_landing_root_with_dot_dot_components_that_resolve_inside(tmp_path, monkeypatch):
    """`..` and `.` components in the landing root (absolute, or relative to the working
    directory), or a root that is itself a symlink to the folder: all resolve to the real
    folder and read it exactly, with `_source_file` relative to the root."""
    real = tmp_path / "zone $(x); 'q'" / "landing"
    small_zone(real)
    (tmp_path / "zone $(x); 'q'" / "elsewhere").mkdir()
    expected = frames(read(real))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "linked root ;$(x)").symlink_to(real)  # the root itself a symlink to the folder
    roots = [
        str(tmp_path / "zone $(x); 'q'" / "elsewhere" / ".." / "landing"),
        str(tmp_path / "zone $(x); 'q'" / "." / "landing" / "public" / ".."),
        "zone $(x); 'q'/elsewhere/../landing",
        "./zone $(x); 'q'/landing/.",
        str(tmp_path / "linked root ;$(x)"),
        "linked root ;$(x)/public/../",
    ]
    for root in roots:
        got = frames(read(root))
        assert got[0].equals(expected[0]) and got[1].equals(expected[1]), root
        assert got[2].equals(expected[2]) and got[3] == expected[3], root


# --- hostile entries in a table folder ----------------------------------------------------------

HOSTILE_ENTRY_NAMES = [
    "..LOAD00000001.csv",
    "LOAD00000001.csv..",
    "..%2f..%2f20241201-000000000.csv",
    "..\\..\\20241201-000000000.csv",
    "20241201-000000000.csv; rm -rf ~",
    "$(touch PWNED)20241201-000000000.csv",
    "`touch PWNED`.csv",
    "LOAD00000001.csv|sh",
    "LOAD00000001.csv ",
    " LOAD00000001.csv",
    ".LOAD00000001.csv",
    "LOAD00000001.csv.",
    "LOAD00000001.csv.gz.",
    "LOAD00000001.csv\t",
    "LOAD00000001.csv\n",  # a name ending in a newline: `$` must not match before it
    "20241201-000000000.csv\n",
    "20241201-000000000.csv.gz\n",
    "ＬＯＡＤ00000001.csv",  # fullwidth letters
    "LOAD00000001.сsv",  # Cyrillic с
    "20241201‐000000000.csv",  # unicode hyphen
    "LOAD0000000١.csv",  # Arabic-Indic digit one
    "٢٠٢٤١٢٠١-٠٠٠٠٠٠٠٠٠.csv",  # Arabic-Indic digits: not YYYYMMDD-HHMMSSmmm
    "２０２４１２０１-０００００００００.csv",  # fullwidth digits
    "20241201-000000000.csv\u200b",  # zero-width space
    "'; DROP TABLE x; --.csv",
]


@pytest.mark.parametrize("name", HOSTILE_ENTRY_NAMES, ids=[repr(n) for n in HOSTILE_ENTRY_NAMES])
def test_entry_with_hostile_name_is_ignored_with_a_reason_and_never_read(tmp_path, name):
    """An entry of the table folder whose name is not exactly a DMS LOAD or CDC name (ASCII
    digits, nothing before or after) is reported in `ignored` with a reason and its content
    never read, whatever shell, path or look-alike unicode characters it holds."""
    write(tmp_path, ORDER, "20241208-221500123.csv", [order(1)])
    put(tmp_path, name, (order(900, currency=SECRET) + "\n").encode(), folder=FOLDER)
    result = read(tmp_path)
    never_read(result)
    assert result.changes["id"].to_list() == ["1"]
    assert result.manifest["_source_file"].to_list() == [f"{FOLDER}/20241208-221500123.csv"]
    mentions = [e for e in result.ignored if f"{FOLDER}/{name}" in e]
    assert len(mentions) == 1 and mentions[0].strip() != f"{FOLDER}/{name}", result.ignored
    assert not list(tmp_path.rglob("PWNED"))


def test_symlinks_pointing_outside_the_root_are_ignored_and_never_read(tmp_path):
    """Landing-named symlinks to a file outside the root (absolute or relative), to a folder
    outside, through a chain of links, or to the root's parent: each is ignored with a reason,
    nothing outside is read."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    secret = outside_file(outside)
    write(root, ORDER, "20241208-221500123.csv", [order(1)])
    folder = root / FOLDER
    links = {
        "20241201-000000001.csv": secret,  # absolute target
        "20241201-000000002.csv": Path(os.path.relpath(secret, folder)),  # ../../../outside/...
        "20241201-000000003.csv": outside,  # a folder outside
        "20241201-000000004.csv": tmp_path,  # the root's parent
        "LOAD00000001.csv": folder / "inside-link",  # a link to a link that leaves the root
    }
    (folder / "inside-link").symlink_to(secret)
    for name, target in links.items():
        (folder / name).symlink_to(target)
    result = read(root)
    never_read(result)
    assert result.changes["id"].to_list() == ["1"]
    for name in links:
        assert sum(f"{FOLDER}/{name}" in e for e in result.ignored) == 1, (name, result.ignored)


@pytest.mark.parametrize("kind", ["loop", "self", "dangling"])
def test_broken_symlinks_are_ignored_not_a_crash(tmp_path, kind):
    """A landing-named symlink that loops (a -> b -> a, or to itself) or points nowhere is
    ignored with a reason; read_table still reads the real files and does not raise."""
    write(tmp_path, ORDER, "20241208-221500123.csv", [order(1)])
    folder = tmp_path / FOLDER
    a, b = folder / "20241201-000000001.csv", folder / "20241201-000000002.csv"
    if kind == "loop":
        a.symlink_to(b)
        b.symlink_to(a)
    elif kind == "self":
        a.symlink_to(a)
    else:
        a.symlink_to(tmp_path / "missing" / "20241201-000000001.csv")
    result = read(tmp_path)
    assert result.changes["id"].to_list() == ["1"]
    assert result.rejects.is_empty()
    assert sum(f"{FOLDER}/{a.name}" in e for e in result.ignored) == 1, result.ignored


@pytest.mark.parametrize("linked", ["table folder", "schema folder"])
def test_symlinked_folder_leading_outside_is_not_read_and_not_a_crash(tmp_path, linked):
    """When the table folder (or its schema folder) is a symlink to a folder outside the
    landing root, the files there are outside the root: read_table does not raise, reads none
    of them, and says so (an ignored entry or a reject per file)."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside_file(outside)
    (root / "public").mkdir(parents=True)
    if linked == "table folder":
        (root / FOLDER).symlink_to(outside / FOLDER)
    else:
        (root / "public").rmdir()
        (root / "public").symlink_to(outside / "public")
    result = read(root)
    never_read(result)
    assert result.changes.is_empty()
    said = result.ignored + result.rejects["reason"].to_list()
    assert any("20241201-000000000.csv" in e for e in result.ignored) or any(
        "outside" in r for r in said
    ), said


def test_fifo_named_like_a_landing_file_is_ignored_never_opened(tmp_path):
    """A named pipe called like a CDC file is not a regular file: ignored, never opened (a
    reader opening it would block; here a writer thread then feeds it SECRET records, so
    opening it shows up as a failure, not a hang)."""
    write(tmp_path, ORDER, "20241208-221500123.csv", [order(1)])
    fifo = tmp_path / FOLDER / "20241201-000000001.csv"
    os.mkfifo(fifo)
    done, fed = threading.Event(), []

    def feed():
        while not done.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # nobody is reading: good
                time.sleep(0.05)
                continue
            try:
                os.write(fd, (order(900, currency=SECRET) + "\n").encode())
                fed.append(True)
            finally:
                os.close(fd)
            return

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        result = read(tmp_path)
    finally:
        done.set()
        feeder.join(5)
    assert fed == [], "the reader opened the FIFO"
    never_read(result)
    assert result.changes["id"].to_list() == ["1"]
    assert sum(f"{FOLDER}/{fifo.name}" in e for e in result.ignored) == 1, result.ignored


# --- values that look like SQL ----------------------------------------------------------------

sql_text = st.one_of(
    st.sampled_from(SQL_VALUES),
    st.text(st.sampled_from("'\";-\\$%()=*/ ORDROPTABLE1,\n"), min_size=1, max_size=30),
)


@fixed(40, 61)
@given(st.lists(sql_text, min_size=1, max_size=6), sql_text)
def test_sql_looking_values_arrive_in_bronze_verbatim(tmp_path_factory, values, bad_op):
    """Field values that look like SQL (quotes, comments, `;`, `$$`, backslashes) are landed
    text: bronze holds them byte for byte; a record whose Op is such text is a reject whose
    raw text and reason quote it verbatim."""
    root = tmp_path_factory.mktemp("sql")
    lines = [order(k + 1, status=v, currency=v[::-1], customer_id=v[:3] or None) for k, v in enumerate(values)]
    rejected = record(ORDER, bad_op if bad_op not in ("I", "U", "D") else bad_op + "'", TS, {"id": "99", "status": bad_op})
    write(root, ORDER, "20241208-221500123.csv", lines + [rejected])
    result = read(root)
    got = result.changes.sort("_source_row")
    assert got["status"].to_list() == values
    assert got["currency"].to_list() == [v[::-1] for v in values]
    assert got["customer_id"].to_list() == [v[:3] or None for v in values]
    assert result.rejects[RAW].to_list() == [rejected]
    op = bad_op if bad_op not in ("I", "U", "D") else bad_op + "'"
    assert op in result.rejects["reason"][0]


# --- the S3 landing store ----------------------------------------------------------------------


class RefusingClient:
    """An S3 client that must not be called."""

    def __getattr__(self, name):
        raise AssertionError(f"S3 called ({name}) for a path outside the landing root")


@pytest.mark.parametrize(
    "path",
    [
        "public/core_order/../../secret/20241201-000000000.csv",
        "../public/core_order/20241201-000000000.csv",
        "public/../../other-prefix/20241201-000000000.csv",
        "public/core_order/..",
        "..",
    ],
)
def test_s3_store_refuses_paths_leaving_the_prefix_without_calling_s3(path):
    """A relative path whose `..` parts would leave the landing prefix is refused before any S3
    call, for reading a file and for listing a folder."""
    store = S3LandingStore(RefusingClient(), "landing-bucket", "dms/cdc")
    with pytest.raises(ValueError):
        store.read_bytes(LandingFile(path, 1))
    with pytest.raises(ValueError):
        store.list_files(path)
    with pytest.raises(ValueError):
        check_relative(path)


class RecordingClient:
    """A real S3 client that records which keys were read."""

    def __init__(self, client):
        self._client, self.read_keys = client, []

    def get_object(self, **kwargs):
        self.read_keys.append(kwargs["Key"])
        return self._client.get_object(**kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


@pytest.mark.system  # a moto S3 server: this one test of the module is of the system tier
def test_s3_keys_with_dot_dot_and_shell_characters_are_ignored_never_read(aws):  # noqa: F811
    """On an S3 server, keys under the table prefix named `..`, `.`, ``, `../../secret/...`,
    `../core_order/...` or with shell characters are reported and never fetched; nothing
    outside the prefix is read; only the real landing files are."""
    aws.reset()
    bucket = "landing-bucket"
    aws.create_bucket(bucket)
    s3 = aws.s3()
    base = "dms/cdc/public/core_order/"
    good = {base + "20241208-221500123.csv": order(1), base + "20241208-221600000.csv.gz": order(2)}
    hostile = [
        base + "..",
        base + ".",
        base + "../core_order/20241201-000000001.csv",
        base + "../../secret/20241201-000000002.csv",
        base + "./20241201-000000003.csv",
        base + "/20241201-000000004.csv",
        base + "$(touch PWNED); 20241201-000000005.csv",
        base + "20241201-000000006.csv/../x",
        base + "..\\20241201-000000007.csv",
    ]
    for key, line in good.items():
        body = (line + "\n").encode()
        s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(body) if key.endswith(".gz") else body)
    for key in hostile + ["dms/cdc/public/secret/20241201-000000008.csv", "dms/secret/20241201-000000009.csv"]:
        s3.put_object(Bucket=bucket, Key=key, Body=(order(900, currency=SECRET) + "\n").encode())

    client = RecordingClient(s3)
    store = S3LandingStore.from_uri(f"s3://{bucket}/dms/cdc", client)
    result = read_table(store, ORDER, INGESTED)
    never_read(result)
    assert sorted(client.read_keys) == sorted(good)
    assert sorted(result.changes["id"].to_list()) == ["1", "2"]
    assert result.rejects.is_empty()
    assert sorted(result.manifest["_source_file"].to_list()) == sorted(k.removeprefix("dms/cdc/") for k in good)
    assert result.ignored, "the hostile keys are reported"
    for entry in result.ignored:
        assert entry.startswith("public/core_order/") and ": " in entry, entry
    with pytest.raises(ValueError):
        store.list_files("public/core_order/../../secret")
