"""The landing bucket's lifecycle rule (deploy/landing-lifecycle.json) is one S3 accepts, and
keeps files at least as long as the README says the landing sensor may need them."""

import json
from pathlib import Path

import pytest

from lakehouse_assets_tests.moto_server import shared_aws  # noqa: F401,F811 (a fixture)

pytestmark = pytest.mark.system

RULE = Path(__file__).resolve().parents[2] / "deploy" / "landing-lifecycle.json"
MINIMUM_DAYS = 7  # README, "The landing zone may be expired"


def test_the_lifecycle_rule_is_accepted_by_s3_and_keeps_files_long_enough(shared_aws):  # noqa: F811
    config = json.loads(RULE.read_text().replace("LANDING_PREFIX", "dms"))
    s3 = shared_aws.s3()
    s3.create_bucket(Bucket="landing", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_lifecycle_configuration(Bucket="landing", LifecycleConfiguration=config)
    rules = s3.get_bucket_lifecycle_configuration(Bucket="landing")["Rules"]
    assert [r["Expiration"]["Days"] for r in rules] == [30]
    assert all(r["Expiration"]["Days"] >= MINIMUM_DAYS for r in rules)
    assert rules[0]["Filter"]["Prefix"] == "dms/"  # the landing prefix only, never the warehouse
