"""Finding landing files (CONTRACT section 2) and turning them into bytes.

A landing store lists one table folder and reads a file; the local folder is implemented here,
S3 beside it. Names that are neither a LOAD nor a CDC file are reported, never read.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

# ASCII digits only, and the whole name: `$` would let "LOAD00000001.csv\n" through, `\d`
# Arabic-Indic or fullwidth digits.
LOAD_NAME = re.compile(r"\ALOAD[0-9A-Fa-f]{8}\.csv(\.gz)?\Z")
CDC_NAME = re.compile(r"\A([0-9]{8})-([0-9]{9})\.csv(\.gz)?\Z")


@dataclass(frozen=True)
class LandingFile:
    path: str  # relative to the landing root, '/'-separated: public/core_order/LOAD00000001.csv
    size: int
    etag: str = ""  # S3 ETag, or size+mtime locally: enough to notice a re-landed file
    # When it landed (epoch seconds): S3 LastModified; locally the later of mtime and ctime (a
    # copy that keeps the source's mtime, or a rename into place, still sets ctime).
    modified: float = 0.0

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def is_load(self) -> bool:
        return bool(LOAD_NAME.match(self.name))

    @property
    def is_gzip(self) -> bool:
        return self.name.endswith(".gz")

    @property
    def order_key(self) -> tuple[int, str]:
        """Contract order between files: all LOAD files before CDC files, each kind by name."""
        return (0 if self.is_load else 1, self.name)

    @property
    def cdc_date(self) -> str | None:
        """YYYY-MM-DD from a CDC file name (when it was written)."""
        m = CDC_NAME.match(self.name)
        return f"{m.group(1)[:4]}-{m.group(1)[4:6]}-{m.group(1)[6:]}" if m else None


def newest_name_day(store: LandingStore, tables) -> date | None:
    """The newest day a CDC file of `tables` is named after: it may be after the last commit
    (DMS names the file it closes at midnight a few seconds into the next day)."""
    days = [f.cdc_date for t in tables for f in store.list_files(t.landing_folder)[0] if f.cdc_date]
    return date.fromisoformat(max(days)) if days else None


def is_landing_name(name: str) -> bool:
    return bool(LOAD_NAME.match(name) or CDC_NAME.match(name))


class LandingStore(Protocol):
    """Where landing files live: a local folder or an S3 prefix."""

    def list_files(self, folder: str) -> tuple[list[LandingFile], list[str]]:
        """Files of one table folder (relative path), and entries ignored with the reason."""
        ...

    def read_bytes(self, file: LandingFile) -> bytes: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class LocalLandingStore:
    root: str

    def describe(self) -> str:
        return str(Path(self.root).resolve())

    def list_files(self, folder: str) -> tuple[list[LandingFile], list[str]]:
        base = Path(self.root) / folder
        files: list[LandingFile] = []
        ignored: list[str] = []
        if not base.is_dir():
            return files, ignored
        root = Path(self.root).resolve()
        for entry in sorted(base.iterdir()):
            rel = f"{folder}/{entry.name}"
            if not is_landing_name(entry.name):
                ignored.append(f"{rel}: not a LOAD or CDC file name")
                continue
            try:
                # The file itself, or a folder above it, may be a link leading elsewhere.
                target = entry.resolve(strict=True)
            except (OSError, RuntimeError) as exc:  # dangling link, or a loop
                ignored.append(f"{rel}: cannot be resolved ({type(exc).__name__}: {exc})")
                continue
            if not _inside(target, root):
                ignored.append(f"{rel}: leads outside the landing root (to {target})")
            elif not target.is_file():
                ignored.append(f"{rel}: not a regular file")
            else:
                st = target.stat()
                files.append(
                    LandingFile(rel, st.st_size, f"{st.st_size}-{st.st_mtime_ns}", max(st.st_mtime, st.st_ctime))
                )
        return files, ignored

    def checksum(self, file: LandingFile) -> str:
        """sha256 of the landed bytes: the same file landed again is recognised."""
        return hashlib.sha256(self.read_bytes(file)).hexdigest()

    def read_bytes(self, file: LandingFile) -> bytes:
        path = (Path(self.root) / file.path).resolve()
        if not _inside(path, Path(self.root).resolve()):
            raise ValueError(f"{file.path} is outside the landing root")
        return path.read_bytes()


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


@dataclass(frozen=True)
class FileBytes:
    data: bytes  # decompressed content
    sha256: str  # of the decompressed content: the same file landed twice hashes the same
    problem: str | None = None  # e.g. a truncated gzip stream: the readable prefix is in data


def decode_file(file: LandingFile, raw: bytes) -> FileBytes:
    """Decompress `.gz`; a damaged stream keeps what could be read and says why."""
    data, problem = raw, None
    if file.is_gzip:
        data, problem = _gunzip(raw)
    return FileBytes(data, hashlib.sha256(data).hexdigest(), problem)


def _gunzip(raw: bytes) -> tuple[bytes, str | None]:
    out, rest = [], raw
    while rest:
        d = zlib.decompressobj(wbits=31)
        try:
            out.append(d.decompress(rest))
        except zlib.error as exc:
            return b"".join(out), f"gzip stream is damaged ({exc})"
        if not d.eof:
            out.append(d.flush())
            return b"".join(out), "gzip stream is truncated"
        rest = d.unused_data  # concatenated gzip members are one file
    if not out:
        return b"", None if not raw else "not a gzip stream"
    return b"".join(out), None


__all__ = [
    "CDC_NAME",
    "LOAD_NAME",
    "FileBytes",
    "LandingFile",
    "LandingStore",
    "LocalLandingStore",
    "decode_file",
]
