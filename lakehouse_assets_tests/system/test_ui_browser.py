"""The Dagster UI in a real headless Chromium against the running services: the asset graph
and catalog show all three layers and every asset, an asset's partitions page shows the
materialized days, and a partition materialized from the launch dialog succeeds. Screenshots
of the three go to docs/screenshots/ (referenced from the README)."""

from __future__ import annotations

import re
import time
from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, sync_playwright

from lakehouse_assets.definitions import defs
from lakehouse_assets.sample_data import generate_landing_zone
from lakehouse_assets_tests.dagster_services import FINISHED, PROJECT, log_tail, running_dagster

pytestmark = pytest.mark.system

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = PROJECT / "docs" / "screenshots"
ASSETS = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
UI_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def zone(tmp_path_factory):
    """A small zone: 9 days, 2024-11-24...2024-12-02."""
    tmp = tmp_path_factory.mktemp("ui")
    summary = generate_landing_zone(tmp / "landing", scale=0.02, seed=7, dirty_rate=0.0,
                                    history_days=7, cdc_days=2)
    return tmp, summary


@pytest.fixture(scope="module")
def services(zone, request):
    """The services once the landing sensor has loaded the zone."""
    tmp, _ = zone
    failed_before = request.session.testsfailed
    with running_dagster(tmp, tmp / "landing", tmp / "warehouse" / "lakehouse.duckdb") as s:
        s.wait_for_runs(lambda runs: runs and all(r["status"] in FINISHED for r in runs),
                        timeout=300, what="the landing sensor's first load")
        yield s
        if request.session.testsfailed > failed_before:
            print(f"--- dagster dev log ({s.log}), tail ---\n{log_tail(s.log, 20000)}")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, services) -> Page:
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, base_url=services.base_url)
    context.add_init_script("localStorage.setItem('communityNux', '1')")  # no welcome dialog
    context.set_default_timeout(UI_TIMEOUT_MS)
    yield context.new_page()
    context.close()


def shoot(page: Page, name: str, clip: dict | None = None) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    page.screenshot(path=str(path), clip=clip)
    print(f"screenshot {path} ({path.stat().st_size // 1024} KB)")


def test_the_asset_graph_shows_every_layer_and_asset(page, services):
    # The catalog lists every asset (a virtual list: scroll until all have been on screen).
    page.goto("/assets")
    page.get_by_text("bronze / core_customer").first.wait_for()
    page.mouse.move(800, 600)
    seen: set[str] = set()
    for _ in range(30):
        seen |= {f"{g}/{n}" for g, n in
                 re.findall(r"\b(bronze|silver|gold) / (\w+)", page.inner_text("body"))}
        if seen >= ASSETS:
            break
        page.mouse.wheel(0, 500)
        page.wait_for_timeout(200)
    assert len(ASSETS) == 32
    assert ASSETS - seen == set()

    # The global lineage: three groups, expanded, zoomed out to show all 32 assets at once.
    page.set_viewport_size({"width": 1400, "height": 1300})
    page.goto("/asset-groups")
    collapsed = page.locator("[class*=CollapsedGroupNode_collapsedGroupNodeBox]")
    collapsed.first.wait_for()
    assert {t.split("\n")[0] for t in collapsed.all_inner_texts()} == {"bronze", "silver", "gold"}
    page.get_by_text("Hide navigation").click()
    page.locator("[aria-label=panel_show_right]").last.click()  # the asset tree sidebar
    page.mouse.click(page.viewport_size["width"] - 100, 250, button="right")
    page.get_by_role("menuitem", name="Expand all groups").click()
    track = page.locator("[class*=Slider_track]").first.bounding_box()
    page.mouse.click(track["x"] + track["width"] / 2, track["y"] + track["height"] * 0.75)
    groups = page.locator("[class*=ExpandedGroupNode_groupOutlineBox]")
    groups.first.wait_for()
    page.wait_for_timeout(2500)  # the zoom animates, the nodes' statuses load
    headers = page.locator("[class*=ExpandedGroupNode_groupNodeHeaderBox]").all_inner_texts()
    assert sorted(h.strip() for h in headers) == ["bronze", "gold", "silver"]
    # 32 nodes, each with an asset's name (long ones shortened with an ellipsis at this zoom)
    shown = page.locator("[class*=AssetNode_assetName]").all_inner_texts()
    names = [key.split("/")[1] for key in ASSETS]
    assert len(shown) == 32
    for label in shown:
        pattern = re.escape(label.strip()).replace("…", ".*")
        assert any(re.fullmatch(pattern, n) for n in names), label
    # The picture: the three groups and a margin, below the toolbar.
    boxes = [b for b in (g.bounding_box() for g in groups.all()) if b]
    toolbar = page.locator("[aria-label='Search and filter assets']").bounding_box()
    x0 = max(min(b["x"] for b in boxes) - 30, 0)
    y0 = max(min(b["y"] for b in boxes) - 30, toolbar["y"] + toolbar["height"] + 24)
    x1 = max(b["x"] + b["width"] for b in boxes) + 30
    y1 = min(max(b["y"] + b["height"] for b in boxes) + 30, page.viewport_size["height"])
    shoot(page, "asset-graph.png", clip={"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0})


def test_the_partitions_page_shows_the_materialized_days(page, services, zone):
    first, last = zone[1].partition_range.split("...")
    page.goto("/assets/gold/daily_revenue?view=partitions")
    materialized = page.get_by_text(re.compile(r"^Materialized \(\d+\)$"))
    materialized.wait_for()
    days = services.asset_partitions_materialized("gold/daily_revenue")
    assert days == [(first, last)]
    count = int(re.search(r"\d+", materialized.inner_text()).group())
    assert count == len(_days(first, last))
    page.get_by_text(re.compile(r"^Missing \(\d+\)$")).click()  # list only what exists
    for day in (first, last):
        page.get_by_text(day, exact=True).first.wait_for()
    page.get_by_text(last, exact=True).first.click()
    # the day's details once loaded: the run that materialized it
    page.get_by_role("link", name=re.compile(r"^[0-9a-f]{8}$")).first.wait_for()
    shoot(page, "partitions.png")


def _days(first: str, last: str) -> list[str]:
    a, b = date.fromisoformat(first), date.fromisoformat(last)
    return [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


def test_a_partition_materialized_from_the_ui_succeeds(page, services, zone):
    day = zone[1].partition_range.split("...")[0]
    page.goto("/assets/gold/daily_revenue")
    page.get_by_role("button", name=re.compile("Materialize")).first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Launch runs to materialize gold / daily_revenue").wait_for()
    dialog.get_by_text("Show all partitions").click()
    selection = dialog.locator("input[type=text]").first
    selection.fill(day)
    selection.press("Enter")
    dialog.get_by_text("1 partition", exact=True).wait_for()
    dialog.get_by_role("button", name="Launch 1 run").click()
    page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}")).wait_for()
    page.get_by_role("link", name="View").first.click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    run_id = page.url.rsplit("/", 1)[-1].split("?")[0]

    started = time.monotonic()
    run = services.wait_for_run(run_id, timeout=300)
    print(f"run {run_id} finished {time.monotonic() - started:.0f} s after launch")
    assert run["status"] == "SUCCESS", run
    assert services.client.get_run_status(run_id).value == "SUCCESS"
    assert {"key": "dagster/partition", "value": day} in run["tags"]
    assert any(m["runId"] == run_id and m["partition"] == day
               for m in services.materializations("gold/daily_revenue"))

    page.reload()
    page.get_by_text("RUN_SUCCESS").first.wait_for()
    shoot(page, "run.png")
