"""`dagster asset materialize` with run tags.

    python -m benchmarks.materialize --tags '{"lakehouse/mode": "changes", ...}' \
        -m lakehouse_assets.definitions --select A,B --partition-range 2024-12-01...2024-12-10

Dagster 1.13's `dagster asset materialize` has no `--tags` option (`dagster job execute` has,
but selects ops, not assets: it would run every output of a multi-asset and none of the
sensor's asset subsetting). A landing-sensor run needs its tags: without `lakehouse/mode=
changes` its steps rewrite their days whole. So this runs the CLI command itself (same
argument parsing, selection, partition-range validation, implicit asset job and
`execute_job` in this process, on the instance of DAGSTER_HOME), with the tags added to the
one `execute_job` call it makes. Every argument after `--tags JSON` is the CLI's own.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: dict[str, str] = {}
    if argv[:1] == ["--tags"]:
        extra = json.loads(argv[1])
        argv = argv[2:]
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise SystemExit("--tags takes a JSON object of strings")

    import dagster._cli.asset as asset_cli  # the command's module: where it calls execute_job
    from dagster._cli import main as dagster_main

    execute_job = asset_cli.execute_job

    def execute_job_with_tags(*args, tags=None, **kwargs):
        # The CLI's own range tags win over the request's copy of them (they are equal).
        return execute_job(*args, tags={**extra, **(tags or {})}, **kwargs)

    asset_cli.execute_job = execute_job_with_tags
    sys.argv = ["dagster", "asset", "materialize", *argv]
    return dagster_main()


if __name__ == "__main__":
    sys.exit(main())
