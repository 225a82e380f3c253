"""The fan-out's plan (jobs/fanout.py): K disjoint day ranges that cover the backfill, and the
phases in the order that keeps the key state single-writer."""

from datetime import date, timedelta

import pytest

from lakehouse_assets.jobs.fanout import FANOUT_TAG, LAYER_JOBS, plan, split
from lakehouse_assets.runs import RANGE_END_TAG, RANGE_START_TAG

pytestmark = pytest.mark.unit

FIRST, LAST = date(2024, 9, 1), date(2024, 12, 10)  # 101 days


def days(ranges):
    return [a + timedelta(days=i) for a, b in ranges for i in range((b - a).days + 1)]


@pytest.mark.parametrize("k", [1, 2, 3, 4, 7, 101])
def test_split_covers_every_day_once_in_k_even_ranges(k):
    ranges = split(FIRST, LAST, k)
    assert len(ranges) == k
    assert days(ranges) == days([(FIRST, LAST)])  # in order: disjoint, contiguous, complete
    sizes = [(b - a).days + 1 for a, b in ranges]
    assert max(sizes) - min(sizes) <= 1


def test_more_runs_than_days_gives_a_run_a_day():
    assert split(date(2024, 12, 1), date(2024, 12, 2), 4) == [(date(2024, 12, 1),) * 2, (date(2024, 12, 2),) * 2]


@pytest.mark.parametrize("k, first, last", [(0, FIRST, LAST), (2, LAST, FIRST)])
def test_split_refuses_nonsense(k, first, last):
    with pytest.raises(ValueError):
        split(first, last, k)


def test_the_phases_merge_once_before_the_k_way_phases():
    bronze, merge, silver, gold = plan(FIRST, LAST, 4)
    assert [(r.job, r.first, r.last) for r in bronze] == [("bronze_layer", FIRST, LAST)]
    assert [(r.job, r.first, r.last) for r in merge] == [("silver_layer", FIRST, FIRST)]
    assert [r.job for r in silver] == ["silver_layer"] * 4 and [r.job for r in gold] == ["gold_layer"] * 4
    assert [(r.first, r.last) for r in silver] == [(r.first, r.last) for r in gold] == split(FIRST, LAST, 4)
    tags = gold[1].tags()
    assert tags[FANOUT_TAG] == "gold" and (tags[RANGE_START_TAG], tags[RANGE_END_TAG]) == (
        str(gold[1].first), str(gold[1].last))
    assert {j.name for j in LAYER_JOBS} == {"bronze_layer", "silver_layer", "gold_layer"}
