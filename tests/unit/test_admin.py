"""The admin port: routed by arrival port, the status page's content, escaping and caching."""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.builders import (
    EXAMPLES,
    HOSTILE_PENDING_SLUG,
    HOSTILE_SLUG,
    argo_pod,
    hostile_static_data,
    review_of,
    utc,
)
from tests.support.dispatching import DispatchClient
from tests.support.dom import parse
from tests.support.fakes import FakeLister, World, listed
from webhook.config import load_config, parse_config
from webhook.core.datasets import Dataset, DatasetPolicy
from webhook.core.review import parse_review
from webhook.insight.admin import admin_blueprint
from webhook.insight.inventory import Inventory, InventoryFailed, take_inventory
from webhook.insight.recent import RecentDecisions
from webhook.insight.status import BEING_COMPUTED, StatusSource
from webhook.insight.status_page import STYLE, render_status
from webhook.serving.app import admin_app
from webhook.serving.dispatch import Dispatch
from webhook.sources import EnrolledExperiment, SourceError
from webhook.wiring import Wiring

WEBHOOK = "https://localhost:8443"
ADMIN = "https://localhost:8444"
EXAMPLE_IMAGES = 6  # candidates in examples/static-data.yaml (two index children are not)


def hostile_wiring(tmp_path: Path) -> Wiring:
    config = load_config(EXAMPLES / "config.yaml")
    raw: dict[str, Any] = {
        "images": [{"repository": config.images[0].repository, "history": {"type": "static"}}],
        "enrollments": {"type": "static"},
        "configRepos": [{"name": "metric-hub", "history": {"type": "static"}}],
        "static": str(hostile_static_data(tmp_path)),
    }
    return Wiring(parse_config(raw, tmp_path))


def status_source(wiring: Wiring, log: RecentDecisions | None = None) -> StatusSource:
    return StatusSource(wiring.inventory, log or RecentDecisions(None), {"mode": "enforce"})


@pytest.fixture
def app(tmp_path: Path) -> DispatchClient:
    wiring = hostile_wiring(tmp_path)
    log = RecentDecisions(None)
    admin = admin_app(admin_blueprint(status_source(wiring, log)))
    return DispatchClient(Dispatch(wiring.admitter, recorder=log, admin=admin), 8443)


@pytest.mark.parametrize(
    ("method", "path", "base", "code"),
    [
        ("get", "/status", ADMIN, 200),
        ("get", "/status.json", ADMIN, 200),
        ("get", "/", ADMIN, 302),
        ("get", "/status", WEBHOOK, 404),
        ("get", "/status.json", WEBHOOK, 404),
        ("post", "/mutate", ADMIN, 404),
        ("get", "/healthz", ADMIN, 200),  # the probes answer on both ports
        ("get", "/healthz", WEBHOOK, 200),
        ("head", "/healthz", ADMIN, 200),
        ("get", "/readyz", ADMIN, 200),
    ],
)
def test_routes_by_arrival_port(
    app: DispatchClient, method: str, path: str, base: str, code: int
) -> None:
    assert getattr(app, method)(path, base_url=base).status_code == code


def test_mutate_on_the_webhook_port(app: DispatchClient) -> None:
    reply = app.post("/mutate", json=review_of(argo_pod("my-experiment")), base_url=WEBHOOK)
    assert reply.status_code == 200
    assert reply.json is not None
    assert reply.json["response"]["allowed"] is True


def test_an_admin_port_without_pages_serves_the_probes_only() -> None:
    world = World()
    client = DispatchClient(Dispatch(world.admitter()), 8443)
    assert client.get("/status", base_url=ADMIN).status_code == 404
    assert client.get("/healthz", base_url=ADMIN).status_code == 200
    status = StatusSource(
        lambda: take_inventory(world.resolver(), FakeLister()), RecentDecisions(None), {}
    )
    admin = admin_app(admin_blueprint(status))
    with_pages = DispatchClient(Dispatch(world.admitter(), admin=admin), 8443)
    assert with_pages.get("/status", base_url=ADMIN).status_code == 200


def test_page_content_and_escaping(app: DispatchClient) -> None:
    client = app
    client.post("/mutate", json=review_of(argo_pod("my-experiment")), base_url=WEBHOOK)
    hostile = argo_pod("x", labels={"jetstream/experiment-slug": HOSTILE_SLUG})
    client.post("/mutate", json=review_of(hostile), base_url=WEBHOOK)
    client.post("/mutate", json=review_of(argo_pod("long-running-study"), dry_run=True),
                base_url=WEBHOOK)  # fmt: skip
    reply = client.get("/status", base_url=ADMIN)
    html = reply.get_data(as_text=True)
    assert reply.mimetype == "text/html"
    assert "<script" not in html
    assert "<img" not in html
    document = parse(html)
    assert len(document.find("g", "release")) == EXAMPLE_IMAGES
    points = document.find("circle", "experiment")
    assert len(points) == 7  # 4 enrolled, 1 not enrolled, 2 hostile listed slugs
    assert {p.attrs["data-slug"] for p in points} >= {HOSTILE_SLUG, HOSTILE_PENDING_SLUG}
    assert len(document.find("circle", "unresolved")) == 2
    assert len(document.find("g", "breaking")) == 1
    assert HOSTILE_SLUG in document.text
    assert HOSTILE_PENDING_SLUG in document.text
    decisions = [e for e in document.find("span", "outcome")]
    assert [d.classes - {"outcome"} for d in decisions] == [{"refused"}, {"patched"}]
    assert "long-running-study" not in _decisions_section(html), "dryRun is not recorded"


def _decisions_section(html: str) -> str:
    return html[html.index("Recent decisions") :]


def test_page_headers_forbid_scripts_and_allow_only_its_style(app: DispatchClient) -> None:
    reply = app.get("/status", base_url=ADMIN)
    policy = reply.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy  # falls back to default-src 'none'
    digest = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy
    style = re.search(r"<style>(.*?)</style>", reply.get_data(as_text=True), re.S)
    assert style is not None
    assert style.group(1) == STYLE
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert " style=" not in reply.get_data(as_text=True), "inline style attributes need CSP"


def test_status_json(app: DispatchClient) -> None:
    client = app
    client.post("/mutate", json=review_of(argo_pod("my-experiment")), base_url=WEBHOOK)
    body = client.get("/status.json", base_url=ADMIN).json
    assert body is not None
    assert body["error"] is None
    assert body["report"]["repositories"][0]["versions"][2]["experimentCount"] == 2
    assert [e["slug"] for e in body["report"]["unresolved"]] == [
        HOSTILE_SLUG,
        HOSTILE_PENDING_SLUG,
    ]
    assert body["recentDecisions"][0]["slug"] == "my-experiment"


def test_report_is_cached_and_failures_retried_sooner() -> None:
    calls: list[float] = []
    clock = [0.0]
    world = World()
    failing = [True]

    def inventory() -> Inventory:
        calls.append(clock[0])
        if failing[0]:
            raise InventoryFailed("cannot list experiments: fake listing: refused")
        return take_inventory(world.resolver(), FakeLister())

    source = StatusSource(inventory, RecentDecisions(None), {}, ttl=30, clock=lambda: clock[0])
    assert source.current().error == "cannot list experiments: fake listing: refused"
    clock[0] = 4.0
    source.current()
    assert len(calls) == 1
    clock[0] = 5.5  # a failure is kept 5 s
    failing[0] = False
    assert source.current().report is not None
    clock[0] = 35.0
    source.current()
    assert len(calls) == 2, "a report is kept 30 s"
    clock[0] = 36.0
    source.current()
    assert len(calls) == 3


def test_unavailable_report_still_shows_decisions() -> None:
    def broken() -> Inventory:
        raise InventoryFailed("cannot list experiments: bigquery: timed out")

    log = RecentDecisions(None)
    request = review_of(argo_pod("my-experiment"))
    parsed = parse_review(request)
    log.record_result(parsed, World().admitter().admit(parsed))
    admin = admin_app(admin_blueprint(StatusSource(broken, log, {})))
    app = DispatchClient(Dispatch(World().admitter(), admin=admin), 8443)
    html = app.get("/status", base_url=ADMIN).get_data(as_text=True)
    assert "The report is unavailable" in html
    assert "bigquery: timed out" in html
    assert "my-experiment" in _decisions_section(html)


def test_unwritable_decisions_leave_the_page_and_say_why(tmp_path: Path) -> None:
    def no_report() -> Inventory:
        raise InventoryFailed("not the point here")

    log = RecentDecisions(tmp_path / "gone", flush_every=3600)
    parsed = parse_review(review_of(argo_pod("my-experiment")))
    log.record_result(parsed, World().admitter().admit(parsed))
    admin = admin_app(admin_blueprint(StatusSource(no_report, log, {})))
    app = DispatchClient(Dispatch(World().admitter(), admin=admin), 8443)
    page = app.get("/status", base_url=ADMIN)
    body = app.get("/status.json", base_url=ADMIN).get_json()
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Recent decisions are unavailable" in html
    assert "No such file or directory" in html
    assert "No such file or directory" in body["recentDecisionsError"]
    assert body["recentDecisions"] == []


def test_an_internal_error_is_named_not_shown() -> None:
    def buggy() -> Inventory:
        raise KeyError("secret-ish detail")

    status = StatusSource(buggy, RecentDecisions(None), {}).current()
    assert status.error == "internal error: KeyError"


def test_many_experiments_are_packed_without_labels() -> None:
    rows = [
        listed(f"exp-{n:03}", utc("2023-01-01T00:00:00Z").replace(day=1 + n % 28))
        for n in range(120)
    ]  # fmt: skip
    world = World()
    source = StatusSource(
        lambda: take_inventory(world.resolver(), FakeLister(rows=rows)), RecentDecisions(None), {}
    )
    document = parse(render_status(source.current()))
    assert len(document.find("circle", "experiment")) == 120
    assert document.find("text", "point-label") == []
    heights = [int(e.attrs["height"]) for e in document.find("svg", "timeline")]
    assert heights[0] < 120 * 18, "lanes are shared where points do not touch"


def test_points_sit_at_their_enrollment_time() -> None:
    early = listed("before-any-image", utc("2022-06-01T00:00:00Z"))
    later = listed("later", utc("2024-03-01T00:00:00Z"))
    world = World()
    source = StatusSource(
        lambda: take_inventory(world.resolver(), FakeLister(rows=[early, later])),
        RecentDecisions(None),
        {},
    )
    document = parse(render_status(source.current()))
    x = {c.attrs["data-slug"]: float(c.attrs["cx"].rstrip("%")) for c in
         document.find("circle", "experiment")}  # fmt: skip
    marks = sorted(float(m.attrs["x1"].rstrip("%")) for m in document.find("line", "release-mark"))
    assert x["before-any-image"] < marks[0], "enrolled before the oldest image: left of it"
    assert marks[2] < x["later"] < marks[3]


_LISTED_SLUG = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_LISTED_SLUG, min_size=1, max_size=8, unique=True))
def test_any_listed_slug_is_text_never_markup(slugs: list[str]) -> None:
    """Whatever a listing holds (BigQuery table descriptions are free text) stays text."""
    moment = utc("2023-06-01T00:00:00Z")
    rows = [listed(slug, moment, "description") for slug in slugs]
    world = World()
    status = StatusSource(
        lambda: take_inventory(world.resolver(), FakeLister(rows=rows)), RecentDecisions(None), {}
    ).current()
    document = parse(render_status(status))
    points = document.find("circle", "experiment")
    assert sorted(p.attrs["data-slug"] for p in points) == sorted(slugs)
    tags = {e.tag for e in document.elements}
    assert tags <= PAGE_TAGS, f"unexpected elements: {tags - PAGE_TAGS}"
    for slug in slugs:
        assert slug.strip() in document.text


PAGE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "h1", "span", "p", "b",
    "main", "section", "h2", "small", "div", "svg", "line", "text", "g", "circle", "ul",
    "li", "rect", "table", "thead", "tr", "th", "tbody", "td", "code", "br", "footer",
}  # fmt: skip


def test_tables_known_only_by_name_and_matched_slugs_are_marked() -> None:
    when = utc("2023-06-01T00:00:00Z")
    rows = [
        EnrolledExperiment("enrollments_my_experiment", None, when, "table-name"),
        EnrolledExperiment("enrollments_spring_study", None, when, "table-name"),
    ]
    world = World()
    world.overrides.slugs = {"spring-study": "latest"}
    status = StatusSource(
        lambda: take_inventory(world.resolver(), FakeLister(rows=rows)), RecentDecisions(None), {}
    ).current()
    html = render_status(status)
    text = parse(html).text
    assert "[enrollments_my_experiment]" in text
    assert "spring-study ~" in text
    assert "only the enrollments table is known" in text
    assert "slug matched to its enrollments table by an overrides entry" in text


def test_page_loads_never_wait_for_a_report_being_computed() -> None:
    """They share the worker's threads with admissions: they get the last report at once."""
    world = World()
    started, release = threading.Event(), threading.Event()
    clock = [0.0]

    def slow() -> Inventory:
        started.set()
        assert release.wait(10)
        return take_inventory(world.resolver(), FakeLister(rows=[]))

    source = StatusSource(slow, RecentDecisions(None), {}, ttl=30, clock=lambda: clock[0])

    def load_in_background() -> threading.Thread:
        started.clear()
        release.clear()
        thread = threading.Thread(target=source.current)
        thread.start()
        assert started.wait(10)
        return thread

    first = load_in_background()
    assert source.current().error == BEING_COMPUTED
    release.set()
    first.join()
    clock[0] = 31.0  # expired: the next load recomputes
    second = load_in_background()
    stale = source.current()
    assert stale.report is not None, "the previous report while the new one is computed"
    release.set()
    second.join()


def test_every_dataset_is_named_and_one_not_listed_is_shown() -> None:
    default = Dataset("moz-fx-data-experiments", "mozanalysis")
    staging = Dataset("moz-fx-data-experiments", "mozanalysis_staging")
    typo = Dataset("moz-fx-data-experiments", "mozanalysis_typo")
    world = World(datasets=DatasetPolicy.of(default, [default, staging, typo]))
    when = utc("2023-06-01T00:00:00Z")
    lister = FakeLister(
        rows=[listed("my-experiment", when)],
        by_dataset={
            staging: [listed("staged-one", when)],
            typo: SourceError("bigquery", f"tables.list {typo}: dataset {typo} not found"),
        },
    )
    status = StatusSource(
        lambda: take_inventory(world.resolver(), lister), RecentDecisions(None), {}
    ).current()
    text = parse(render_status(status)).text
    assert f"in {default}, {staging}, {typo}" in text
    assert "Datasets not listed" in text
    assert f"{typo}: bigquery: tables.list {typo}: dataset {typo} not found" in text
    assert f"enrolled 2023-06-01 00:00Z · {staging}" in text
