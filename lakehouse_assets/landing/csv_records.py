"""RFC 4180 splitting of one landing file into records and fields, vectorized.

DMS output is well-formed RFC 4180, so the fast path finds every delimiter at once: a `,` or
`\\n` is a delimiter exactly when an even number of `"` precede it. Fields then become one
Arrow string array over the file's own buffer (no per-field Python objects). Only when a file
breaks RFC 4180 (a stray quote, text after a closing quote, an unterminated quote) does a
sequential parser take over, so that one bad record is rejected instead of swallowing the rest.

The result keeps what the DMS layout needs and what CSV readers usually throw away: whether a
field was quoted (`""` is the empty string, an empty unquoted field is NULL), the exact record
boundaries (raw text for rejects) and which records hold bytes that are not UTF-8.
"""

from __future__ import annotations

import codecs
import re
import threading
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

QUOTE, COMMA, NEWLINE, CR = 0x22, 0x2C, 0x0A, 0x0D


@dataclass(frozen=True)
class SplitFile:
    """Records of one file. Field arrays are flat; record r owns fields
    `first_field[r] : first_field[r] + n_fields[r]`."""

    values: pl.Series  # String; NULL for an empty unquoted field; unquoted and unescaped
    first_field: np.ndarray  # int64 per record
    n_fields: np.ndarray  # int64 per record
    record_start: np.ndarray  # byte offsets per record (raw text = data[start:end])
    record_end: np.ndarray
    errors: dict[int, str]  # record index -> why its bytes are not a readable CSV record
    data: bytes

    @property
    def n_records(self) -> int:
        return len(self.first_field)

    def raw_text(self, records: np.ndarray) -> list[str]:
        """The landed text of some records (for rejects); bad bytes shown as \\xNN."""
        return [
            self.data[s:e].decode("utf-8", errors="backslashreplace")
            for s, e in zip(self.record_start[records], self.record_end[records])
        ]


def split_records(data: bytes) -> SplitFile:
    """Split CSV bytes into records and fields; blank lines are not records."""
    if data and not data.endswith(b"\n"):
        data = data + b"\n"
    bad_utf8 = _invalid_utf8_ranges(data)
    text = _mask_ranges(data, bad_utf8)
    arr = np.frombuffer(text, dtype=np.uint8)
    fast = _fast_split(arr)
    if fast is None:
        starts, ends, quoted, rec_of_field, rec_bounds, errors = _sequential_split(text)
    else:
        starts, ends, quoted, rec_of_field, rec_bounds = fast
        errors = {}
    rec_start, rec_end = rec_bounds

    if len(rec_start) == 0:
        return _empty(data)
    n_fields = np.bincount(rec_of_field, minlength=len(rec_start)).astype(np.int64)
    # A blank line is a record of one empty unquoted field: not a record at all.
    first_field = _firsts(n_fields)
    blank = (n_fields == 1) & (ends[first_field] == starts[first_field]) & ~quoted[first_field]

    values = _field_values(text, starts, ends, quoted)
    if bad_utf8:
        errors = _mark_undecodable(errors, bad_utf8, rec_start, rec_end)

    if not blank.any():
        return SplitFile(values, first_field, n_fields, rec_start, rec_end, errors, data)
    keep_records = np.flatnonzero(~blank)
    keep_fields = np.repeat(~blank, n_fields)
    kept_n = n_fields[keep_records]
    renumber = np.cumsum(~blank) - 1  # old record index -> index among the kept records
    return SplitFile(
        values=values.filter(pl.Series(keep_fields)) if len(values) else values,
        first_field=_firsts(kept_n),
        n_fields=kept_n,
        record_start=rec_start[keep_records],
        record_end=rec_end[keep_records],
        errors={int(renumber[r]): e for r, e in errors.items() if not blank[r]},
        data=data,
    )


def _firsts(n_fields: np.ndarray) -> np.ndarray:
    return (np.cumsum(n_fields) - n_fields).astype(np.int64)


def _empty(data: bytes) -> SplitFile:
    none = np.zeros(0, dtype=np.int64)
    return SplitFile(pl.Series("value", [], dtype=pl.String), none, none, none, none, {}, data)


def _fast_split(arr: np.ndarray):
    """Parity-based split; None when the file is not clean RFC 4180."""
    quotes = np.flatnonzero(arr == QUOTE)
    if len(quotes) % 2:
        return None
    cands = np.flatnonzero((arr == COMMA) | (arr == NEWLINE))
    delims = cands[(np.searchsorted(quotes, cands) & 1) == 0]
    if len(delims) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=bool), empty, (empty, empty)
    starts = np.concatenate([[0], delims[:-1] + 1]).astype(np.int64)
    ends = delims.astype(np.int64)
    ends_record = arr[delims] == NEWLINE
    # Tolerate CRLF: a CR right before a record's newline is part of the line ending.
    cr = ends_record & (ends > starts) & (arr[np.maximum(ends - 1, 0)] == CR)
    ends = ends - cr
    quoted = (ends > starts) & (arr[np.minimum(starts, len(arr) - 1)] == QUOTE)
    if not _quoting_is_valid(arr, quotes, starts, ends, quoted):
        return None
    rec_of_field = np.concatenate([[0], np.cumsum(ends_record)[:-1]]).astype(np.int64)
    record_last = np.flatnonzero(ends_record)
    record_first = np.concatenate([[0], record_last[:-1] + 1])
    rec_start = starts[record_first]
    rec_end = ends[record_last]
    return starts, ends, quoted, rec_of_field, (rec_start, rec_end)


def _quoting_is_valid(arr, quotes, starts, ends, quoted) -> bool:
    """Every quote opens a field, closes it, or is half of a doubled `""` inside it.

    With the quotes numbered in file order, quote 2j opens (or re-opens after an escaped
    quote) and quote 2j+1 closes: an opening quote must follow a delimiter or the start of
    the file, or directly follow a closing one (`""`); a closing quote must precede a
    delimiter, a CRLF or the end of the file, or directly precede an opening one."""
    if len(quotes) == 0:
        return True
    opening, closing = quotes[0::2], quotes[1::2]
    after_delimiter = np.ones(len(opening), dtype=bool)
    inner = opening > 0
    before = arr[opening[inner] - 1]
    after_delimiter[inner] = (before == COMMA) | (before == NEWLINE)
    reopens = np.zeros(len(opening), dtype=bool)
    reopens[1:] = opening[1:] == closing[: len(opening) - 1] + 1
    if not (after_delimiter | reopens).all():
        return False
    n = len(arr)
    nxt = arr[np.minimum(closing + 1, n - 1)]
    nxt2 = arr[np.minimum(closing + 2, n - 1)]
    ends_field = (closing == n - 1) | (nxt == COMMA) | (nxt == NEWLINE) | (
        (nxt == CR) & (nxt2 == NEWLINE) & (closing + 2 < n)
    )
    escapes = np.zeros(len(closing), dtype=bool)
    followed = len(opening) > 1
    if followed:
        k = min(len(closing), len(opening) - 1)
        escapes[:k] = opening[1 : k + 1] == closing[:k] + 1
    return bool((ends_field | escapes).all())


_QUOTED = re.compile(rb'"((?:[^"]|"")*)"', re.DOTALL)
_UNQUOTED = re.compile(rb"[^,\n]*")


def _sequential_split(text: bytes):
    """Field-by-field parser for files that break RFC 4180.

    A record with bad quoting is kept whole and marked; parsing resumes at the next line so
    later records are not lost."""
    starts, ends, quoted, rec_of_field = [], [], [], []
    rec_start, rec_end = [], []
    errors: dict[int, str] = {}
    pos, n, rec = 0, len(text), 0
    while pos < n:
        first = pos
        error = None
        while True:
            if text[pos : pos + 1] == b'"':
                m = _QUOTED.match(text, pos)
                if m is None:
                    error = "malformed CSV: quoted field is never closed"
                    break
                s, e, q, pos = m.start(), m.end(), True, m.end()
                if text[pos : pos + 2] == b"\r\n":
                    pos += 1  # CRLF line ending
                if pos < n and text[pos] not in (COMMA, NEWLINE):
                    error = "malformed CSV: text after a closing quote"
                    break
            else:
                m = _UNQUOTED.match(text, pos)
                s, e, q, pos = m.start(), m.end(), False, m.end()
                if b'"' in text[s:e]:
                    error = "malformed CSV: quote inside an unquoted field"
                    break
                if e > s and text[e - 1] == CR and text[pos : pos + 1] == b"\n":
                    e -= 1  # CRLF line ending
            starts.append(s)
            ends.append(e)
            quoted.append(q)
            rec_of_field.append(rec)
            if pos >= n or text[pos] == NEWLINE:
                pos += 1
                break
            pos += 1  # comma
        if error is not None:
            # Drop the fields gathered so far. A broken record is taken to be one line (a
            # quote that never closes on its line would otherwise swallow the records after
            # it): it becomes one raw reject, and parsing resumes on the next line.
            while rec_of_field and rec_of_field[-1] == rec:
                for lst in (starts, ends, quoted, rec_of_field):
                    lst.pop()
            nl = text.find(b"\n", first)
            pos = n if nl < 0 else nl + 1
            end = nl if nl >= 0 else n
            if end > first and text[end - 1] == CR:
                end -= 1
            starts.append(first)
            ends.append(end)
            quoted.append(False)
            rec_of_field.append(rec)
            rec_start.append(first)
            rec_end.append(end)
        else:
            end = max(first, min(pos - 1, n))
            if end > first and text[end - 1] == CR:
                end -= 1  # CRLF line ending
            rec_start.append(first)
            rec_end.append(end)
        if error is not None:
            errors[rec] = error
        rec += 1
    as64 = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    return (
        as64(starts),
        as64(ends),
        np.asarray(quoted, dtype=bool),
        as64(rec_of_field),
        (as64(rec_start), as64(rec_end)),
        errors,
    )


def _field_values(text: bytes, starts, ends, quoted) -> pl.Series:
    """One Arrow string array over the file buffer; quoted fields lose their quotes."""
    if len(starts) == 0:
        return pl.Series("value", [], dtype=pl.String)
    s = starts + quoted
    e = ends - quoted
    offsets = np.empty(2 * len(s) + 2, dtype=np.int64)
    offsets[0] = 0
    offsets[1:-1:2] = s
    offsets[2::2] = e
    offsets[-1] = len(text)
    # Values alternate field / gap (delimiters, quotes); keep the fields. An empty unquoted
    # field is NULL: a validity bitmap, not a polars pass over the values (a landing file is
    # often small, and each Series operation has a fixed cost).
    empty = (e == s) & ~quoted
    validity = None
    if empty.any():
        valid = np.ones(len(offsets) - 1, dtype=bool)
        valid[1::2] = ~empty
        validity = pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
    arr = pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets.tobytes()), pa.py_buffer(text), validity
    )
    values = pl.from_arrow(arr).gather(np.arange(1, len(offsets) - 1, 2)).alias("value")
    # Only quoted fields holding a doubled quote need unescaping (none when the bytes hold none).
    if b'""' in text:
        escaped = (values.str.contains('""', literal=True) & pl.Series(quoted)).arg_true()
        if len(escaped):
            values = values.scatter(escaped, values.gather(escaped).str.replace_all('""', '"', literal=True))
    return values


_found = threading.local()


def _collect_undecodable(exc: UnicodeDecodeError):
    _found.ranges.append((exc.start, exc.end))
    return "", exc.end


codecs.register_error("lakehouse_collect_undecodable", _collect_undecodable)


def _invalid_utf8_ranges(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges that are not UTF-8, found in one decoding pass."""
    try:
        data.decode("utf-8")
        return []
    except UnicodeDecodeError:
        pass
    _found.ranges = []
    data.decode("utf-8", errors="lakehouse_collect_undecodable")
    ranges, _found.ranges = _found.ranges, []
    return ranges


def _mask_ranges(data: bytes, ranges: list[tuple[int, int]]) -> bytes:
    """Replace undecodable bytes by `?` (same length: offsets stay valid)."""
    if not ranges:
        return data
    buf = bytearray(data)
    for s, e in ranges:
        buf[s:e] = b"?" * (e - s)
    return bytes(buf)


def _mark_undecodable(errors, ranges, rec_start, rec_end):
    errors = dict(errors)
    bad_pos = np.asarray([s for s, _ in ranges], dtype=np.int64)
    rec = np.searchsorted(rec_start, bad_pos, side="right") - 1
    for r, p in zip(rec.tolist(), bad_pos.tolist()):  # one per undecodable byte run, not per record
        if 0 <= r < len(rec_start) and r not in errors:
            errors[r] = f"undecodable bytes: not UTF-8 at byte {p} of the file"
    return errors
