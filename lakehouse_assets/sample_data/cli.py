"""`lakehouse-generate`: write a sample DMS landing zone and say how to load it."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from lakehouse_assets.sample_data.generator import GenerationSummary, generate_landing_zone


def format_summary(summary: GenerationSummary) -> str:
    lines = [f"{'table':<20}{'files':>7}{'load rows':>12}{'cdc rows':>11}{'live rows':>12}"]
    for t in summary.tables:
        lines.append(
            f"{t.table:<20}{t.files:>7,}{t.load_records:>12,}{t.cdc_records:>11,}{t.live_rows:>12,}"
        )
    load = sum(t.load_records for t in summary.tables)
    cdc = sum(t.cdc_records for t in summary.tables)
    live = sum(t.live_rows for t in summary.tables)
    lines.append(f"{'total':<20}{summary.files:>7,}{load:>12,}{cdc:>11,}{live:>12,}")
    lines.append("")
    lines.append(f"landing zone: {summary.root} (scale {summary.scale:g}, seed {summary.seed})")
    lines.append(f"partition range: --partition-range {summary.partition_range}")
    lines.append(f"wall time: {summary.seconds:.2f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lakehouse-generate",
        description="Write a sample AWS DMS landing zone (full load + CDC) for the source tables.",
    )
    parser.add_argument(
        "--root", default="data/landing", help="landing root folder (default: %(default)s)"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiplies every row count (default: 1)"
    )
    parser.add_argument("--seed", type=int, default=42, help="same seed, same bytes (default: 42)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace LOAD/CDC files already there"
    )
    parser.add_argument(
        "--cdc-days", type=int, default=10, help="days of CDC after the load (default: 10)"
    )
    parser.add_argument(
        "--dirty-rate",
        type=float,
        default=0.001,
        help="fraction of rows to spoil for quarantine, 0 disables (default: 0.001)",
    )
    parser.add_argument(
        "--load-date",
        type=date.fromisoformat,
        default=date(2024, 12, 1),
        help="day of the full load, YYYY-MM-DD (default: 2024-12-01)",
    )
    parser.add_argument(
        "--history-days",
        type=int,
        default=91,
        help="days of business history before the load (default: 91)",
    )
    parser.add_argument(
        "--gzip-every",
        type=int,
        default=7,
        help="gzip every Nth CDC file of a table, 0 never (default: 7)",
    )
    args = parser.parse_args(argv)
    try:
        summary = generate_landing_zone(
            args.root,
            args.scale,
            args.seed,
            load_date=args.load_date,
            cdc_days=args.cdc_days,
            history_days=args.history_days,
            dirty_rate=args.dirty_rate,
            gzip_every=args.gzip_every,
            overwrite=args.overwrite,
        )
    except (FileExistsError, ValueError) as exc:
        print(f"lakehouse-generate: {exc}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
