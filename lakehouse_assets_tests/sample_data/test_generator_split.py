"""Same arguments, same bytes: the sample-data generator writes exactly the files it wrote when
these digests were recorded (from the single-module generator, before it became a package).

Any change to what the generator writes (a value, a file name, a gzip boundary, a dirty
record, a drop's `_dms_seq`) changes a digest here; a change that means to do so updates
them on purpose. Each digest covers one table folder: every file's name and bytes.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakehouse_assets.sample_data import generate_landing_zone, write_cdc_drop
from lakehouse_assets.sources import SOURCE_TABLES

pytestmark = pytest.mark.unit

# name -> (generate_landing_zone keyword arguments, write_cdc_drop (seed, when) after it).
# Tiny scales keep this fast and still cover what the generator does: LOAD and CDC files
# (86 and 108 of them), gzipped CDC files, dirty records, and a drop of orders, items, events.
CASES = {
    "defaults": (
        {"scale": 0.002, "seed": 3},
        (5, datetime(2024, 12, 11, 0, 5, tzinfo=UTC)),
    ),
    "options": (
        {
            "scale": 0.002,
            "seed": 11,
            "dirty_rate": 0.002,
            "gzip_every": 3,
            "cdc_days": 3,
            "history_days": 6,
        },
        (9, datetime(2024, 12, 4, 6, 0, tzinfo=UTC)),
    ),
}

EXPECTED = {
    "defaults": {
        "core_tenant": "f07f2249c1ea442e55fb81d308379d7d0d0126be37c8cbd835b67e21b8cb661e",
        "core_customer": "c8351cbe106c63b3e8179920f5b7d45e69687a3e87e050ed30a0c79c19b4ce56",
        "core_product": "bf7cadfbe19cc1ba640811c24f59ba50fdad1e7c86d53eed269d08cb212a862a",
        "core_order": "45b23c87bd742e500c17ff6c052faeef911d3f9100a09607b8fbbe65ea7c3d89",
        "core_orderitem": "de9c2b84644a2a8719610d25529160f74dd8ca2fc68a3c26fe717aa11a06cac8",
        "core_event": "02bd7774a55446ff4e416029044e1ef6e0d7bd2cbfcf7ab1b017b25ad3d82c9d",
        "core_subscription": "7b328265fc88deee27854e40d84d58fd0ca59301fc09ab41a49ea54c14bdc6e7",
        "core_invoice": "64576bef4b613452a6570fadcf79cca5525d336955555ef4bb48d87002f0e5e7",
        "drop": "683fb1f97c545da54615baa23a619e5008374764d87d7efc0bd9fad226376275"
        " core_event,core_order,core_orderitem",
        "summary": "86 files, 1075 records, 2024-09-01...2024-12-10, core_tenant 3/1/3, "
        "core_customer 11/3/13, core_product 2/1/2, core_order 88/41/96, "
        "core_orderitem 282/27/307, core_event 454/137/587, core_subscription 4/0/4, "
        "core_invoice 19/2/20",
    },
    "options": {
        "core_tenant": "83dd438ce86d10836559d6d44a501caed04df39ca8ea3b7de34267e98e6ac835",
        "core_customer": "583abecf8a36050bf085e73a7c92669d9a1f60bfbe63c2bce1363b7b8fb51359",
        "core_product": "43768776328e82c34c2b7f9dccc5a6278cc70aad416203ea98cf85a6cba09389",
        "core_order": "ab4e7e0f1b8ff4ed8c5f191d45c591dd19a646ad9afc857f9ae8f41e7a59373a",
        "core_orderitem": "33449a18b227adf44ed359a1abe25abbf77e90cb0c80c863554abeea41aa8be3",
        "core_event": "a72981e3be34d482a7aa53cce7236a4dd34e9ee2d32d2be243f9b3065fcd2dd1",
        "core_subscription": "6f32e38141a765b0a6ee8ce6bf42689e59434bcc14862bb9e6fa92f407cd2280",
        "core_invoice": "8a2267e571146b1fe1633d426fb845b77ad465c4660036a0fbf1f3b224015138",
        "drop": "81e83ab0e351b92dda4ebee43827a61e65f60652c8f1a941da5a55fff8aaff94"
        " core_event,core_order,core_orderitem",
        "summary": "108 files, 1146 records, 2024-11-25...2024-12-03, core_tenant 3/1/3, "
        "core_customer 9/5/13, core_product 2/1/2, core_order 62/128/96, "
        "core_orderitem 211/104/307, core_event 366/225/587, core_subscription 1/3/4, "
        "core_invoice 13/12/20",
    },
}


def _digest(files: list[Path]) -> str:
    """sha256 over each file's name and bytes, in name order."""
    h = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        h.update(path.name.encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _digests(root: Path, drop: list[Path]) -> dict[str, str]:
    """One digest per table folder of the generated zone, one for the drop's files, and the
    summary's numbers."""
    dropped = set(drop)
    out = {
        t.name: _digest([p for p in (root / t.landing_folder).iterdir() if p not in dropped])
        for t in SOURCE_TABLES
    }
    out["drop"] = _digest(drop) + " " + ",".join(sorted(p.parent.name for p in drop))
    return out


@pytest.fixture(scope="module")
def zones(tmp_path_factory) -> dict[str, tuple[Path, dict[str, str]]]:
    made = {}
    for name, (kwargs, (drop_seed, when)) in CASES.items():
        root = tmp_path_factory.mktemp(name)
        summary = generate_landing_zone(root, **kwargs)
        drop = write_cdc_drop(root, kwargs["scale"], drop_seed, when)
        digests = _digests(root, drop)
        tables = (
            f"{t.table} {t.load_records}/{t.cdc_records}/{t.live_rows}" for t in summary.tables
        )
        digests["summary"] = (
            f"{summary.files} files, {summary.records} records, {summary.partition_range}, "
            + ", ".join(tables)
        )
        made[name] = (root, digests)
    return made


@pytest.mark.parametrize("case", list(CASES))
def test_same_arguments_write_the_same_bytes(zones, case):
    _, digests = zones[case]
    assert digests == EXPECTED[case]


def test_one_changed_byte_changes_the_digest(zones, tmp_path):
    """The check can fail: a single byte flipped in one file changes its table's digest."""
    root, digests = zones["defaults"]
    folder = SOURCE_TABLES[0].landing_folder
    copy = tmp_path / "copy"
    shutil.copytree(root / folder, copy)
    victim = sorted(copy.iterdir())[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    victim.write_bytes(bytes(data))
    assert _digest(list(copy.iterdir())) != digests[SOURCE_TABLES[0].name]
