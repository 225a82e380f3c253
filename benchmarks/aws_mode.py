"""AWS mode's full backfill (Iceberg tables in Glue, the landing zone on S3) against moto's S3 and
Glue server on loopback, next to local mode's backfill of the same zone:

    .venv/bin/python -m benchmarks.aws_mode --scale 0.1 --repeat 3

Both are the contract's CLI command (`dagster asset materialize --select '*' --partition-range`)
on a fresh instance (storage created beforehand, not counted) and a fresh warehouse. moto's
server runs in this process, so what it costs is this process's CPU time during the backfill;
ours is the CPU time of the backfill's process tree. The rest of the wall is waiting (on each
other, on the disk). Results: `results/aws-mode-scale-<scale>.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import socket
import statistics
import tempfile
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from benchmarks import measure
from benchmarks.instance import REPO, fresh_home, materialize_cmd, prepare_storage, project_env
from benchmarks.steps import checked, log
from lakehouse_assets.sample_data import generate_landing_zone

REGION = "eu-west-1"
RESULTS = Path(__file__).parent / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def upload(endpoint: str, zone: Path, bucket: str) -> int:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    paths = [p for p in zone.rglob("*") if p.is_file()]
    for p in paths:
        s3.upload_file(str(p), bucket, f"dms/{p.relative_to(zone)}")
    return len(paths)


def backfill(env: dict, span: str, work: Path, name: str, timeout: float) -> dict:
    prepare_storage(env)
    mine, theirs = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
    m = checked(measure.run(materialize_cmd("*", span), env=env, cwd=REPO, log_prefix=work / name,
                            timeout=timeout), name)
    return {"wall_seconds": m.wall_seconds, "peak_rss_mib": m.peak_rss_mib,
            "moto_cpu_seconds": cpu(resource.RUSAGE_SELF) - mine,
            "ours_cpu_seconds": cpu(resource.RUSAGE_CHILDREN) - theirs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION=REGION)
    with tempfile.TemporaryDirectory(prefix="lakehouse-aws-bench-") as tmp:
        work = Path(tmp)
        summary = generate_landing_zone(work / "zone", scale=args.scale, seed=args.seed)
        span, first = summary.partition_range, summary.first_business_date.isoformat()
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        endpoint = f"http://127.0.0.1:{port}"
        try:
            files = upload(endpoint, work / "zone", "landing")
            log(f"scale {args.scale}: {summary.records:,} records in {files} files, span {span}")
            reps = []
            for i in range(args.repeat):
                local_env = project_env(fresh_home(work / f"home-local-{i}", "shipped"), work / "zone",
                                        work / f"local-{i}.duckdb", first)
                local = backfill(local_env, span, work, f"local-{i}", args.timeout)
                log(f"rep {i + 1}: local mode {local['wall_seconds']:.1f} s")
                aws_env = {**project_env(fresh_home(work / f"home-aws-{i}", "shipped"), work / "zone",
                                         work / "unused.duckdb", first),
                           "LAKEHOUSE_ENV": "aws", "LAKEHOUSE_LANDING_URI": "s3://landing/dms",
                           "LAKEHOUSE_WAREHOUSE_URI": f"s3://warehouse-{i}/lakehouse",
                           "LAKEHOUSE_GLUE_DATABASE_PREFIX": f"bench{i}", "AWS_ENDPOINT_URL": endpoint,
                           "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "bench",
                           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_EC2_METADATA_DISABLED": "true"}
                boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(
                    Bucket=f"warehouse-{i}", CreateBucketConfiguration={"LocationConstraint": REGION})
                aws = backfill(aws_env, span, work, f"aws-{i}", args.timeout)
                log(f"rep {i + 1}: AWS mode on moto {aws['wall_seconds']:.1f} s "
                    f"(CPU: ours {aws['ours_cpu_seconds']:.1f} s, moto {aws['moto_cpu_seconds']:.1f} s)")
                reps.append({"local": local, "aws": aws})
        finally:
            server.stop()
    med = {mode: {k: statistics.median(r[mode][k] for r in reps) for k in reps[0][mode]} for mode in ("local", "aws")}
    result = {"scale": args.scale, "records": summary.records, "span": span, "repetitions": reps, "median": med,
              "load": measure.loadavg()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"aws-mode-scale-{args.scale:g}.json").write_text(json.dumps(result, indent=2))
    print(f"\nmedians of {args.repeat}: local {med['local']['wall_seconds']:.1f} s, AWS mode on moto "
          f"{med['aws']['wall_seconds']:.1f} s ({med['aws']['wall_seconds'] / med['local']['wall_seconds']:.2f}x); "
          f"AWS CPU: ours {med['aws']['ours_cpu_seconds']:.1f} s, moto {med['aws']['moto_cpu_seconds']:.1f} s; "
          f"local CPU {med['local']['ours_cpu_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
