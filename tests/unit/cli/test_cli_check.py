"""`bellwether check` says what the judge would make of each answer (NaN, infinities and several series
are not "ok") and warns when a query's range is shorter than four scrape intervals of the targets it
reads, from Prometheus' own `/api/v1/targets`. Against a small Prometheus HTTP API on a loopback port."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from bellwether.api import parse
from bellwether.cli.check import run_checks_and_targets
from bellwether.cli.main import main
from bellwether.cli.scrape import RangeCheck, Target, check_ranges, targets_of, warning

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "vllm-single-region.yaml"
TARGETS = {
    "activeTargets": [
        {"labels": {"job": "fleet", "instance": "10.0.0.1:8000"}, "scrapeInterval": "30s"},
        {"labels": {"job": "fleet", "instance": "10.0.0.2:8000"}, "scrapeInterval": "30s"},
        {"labels": {"job": "other", "instance": "10.0.0.3:9000"}, "scrapeInterval": "15s"},
        {"labels": {"job": "broken"}, "scrapeInterval": "soon"},
    ]
}
# What the stand-in answers for a query, by the metric name in it: one value per step, or several series.
ANSWERS: dict[str, list[str] | None] = {
    "ok_total": ["0.5"],
    "nan_total": ["NaN"],
    "inf_total": ["+Inf"],
    "big_total": ["5"],
    "none_total": [],
    "two_total": None,
}


def matrix(query: str, start: float, end: float, step: float) -> dict[str, Any]:
    name = next(n for n in ANSWERS if n in query)
    times = [start + i * step for i in range(int((end - start) / step + 1e-9) + 1)]
    values = ANSWERS[name]
    if values is None:
        result = [{"metric": {"pod": p}, "values": [[t, "1"] for t in times]} for p in ("a", "b")]
    else:
        result = [{"metric": {}, "values": [[t, values[0]] for t in times]}] if values else []
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


class StandIn:
    """Prometheus' query_range and targets endpoints, served from a thread so sync tests can use it."""

    def __init__(self, targets: bool = True) -> None:
        self.targets = targets
        self.loop = asyncio.new_event_loop()
        self.url = ""

    async def query_range(self, request: web.Request) -> web.Response:
        form = await request.post()
        args = (str(form["query"]), float(str(form["start"])), float(str(form["end"])), float(str(form["step"])))
        return web.json_response(matrix(*args))

    async def active_targets(self, request: web.Request) -> web.Response:
        if not self.targets:
            return web.json_response({"status": "error", "error": "not here"}, status=404)
        assert request.query.get("state") == "active"
        return web.json_response({"status": "success", "data": TARGETS})

    def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/v1/query_range", self.query_range)
        app.router.add_get("/api/v1/targets", self.active_targets)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        self.runner = runner
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture(scope="module", params=[True, False], ids=["targets", "no-targets"])
def prometheus(request: pytest.FixtureRequest) -> Iterator[StandIn]:
    server = StandIn(targets=request.param)
    server.start()
    yield server
    server.stop()


def spec_doc(url: str) -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"]["analysis"]["interval"] = "1m"
    doc["spec"]["analysis"]["prometheus"] = {"url": url, "timeout": "5s"}
    doc["spec"]["analysis"]["metrics"] = [
        {"name": name.removesuffix("_total"), "query": f'sum(rate({name}{{job="fleet"}}[{{{{interval}}}}]))', "max": 1}
        for name in ANSWERS
    ] + [
        {"name": "ratio-only", "query": 'sum(rate(ok_total{job="fleet"}[{{interval}}]))', "baseline": {"maxRatio": 2}},
        {"name": "other-job", "query": 'sum(rate(ok_total{job="other"}[{{interval}}]))', "max": 1},
    ]
    return doc


def test_each_answer_is_judged_as_the_judge_would(prometheus: StandIn) -> None:
    md = parse(spec_doc(prometheus.url))
    results, unknown = asyncio.run(run_checks_and_targets(md, prometheus.url, ["abc"], None))
    by_metric = {r.metric: r for r in results}
    assert {m: (r.outcome, r.verdict) for m, r in by_metric.items()} == {
        "ok": ("data", "Successful"),
        "nan": ("inconclusive", "Inconclusive"),
        "inf": ("inconclusive", "Inconclusive"),
        "big": ("failed", "Failed"),
        "none": ("empty", "Inconclusive"),
        "two": ("error", "Inconclusive"),
        "ratio-only": ("data", "Successful"),  # a baseline needs a second revision: not judged here
        "other-job": ("data", "Successful"),
    }
    assert "nan" in by_metric["nan"].detail and "5 is above the maximum 1" in by_metric["big"].detail
    assert "the query returned 2 series" in by_metric["two"].detail
    if prometheus.targets:
        assert unknown is None
        assert by_metric["ok"].scrape_interval == 30 and by_metric["other-job"].scrape_interval == 15
        assert by_metric["other-job"].warning is None  # 1m is four scrapes of 15s
        assert by_metric["ok"].warning == (
            "{{interval}} is 1m, shorter than 4 scrape intervals of 30s (the slowest of the 2 target(s) the query's "
            "labels match): rate() over it sees one or two samples and often returns nothing; make "
            "spec.analysis.interval at least 2m, or scrape more often"
        )
        assert "the range is too short for the scrape interval" in by_metric["none"].detail
    else:
        assert unknown is not None and "/api/v1/targets answered HTTP 404" in unknown
        assert all(r.warning is None and r.scrape_interval is None for r in results)
        assert "check the label names and values" in by_metric["none"].detail


def test_the_command_prints_verdicts_and_warnings_and_exits_3(prometheus: StandIn, tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "md.yaml"
    path.write_text(yaml.safe_dump(spec_doc(prometheus.url)))
    assert main(["check", "-f", str(path), "--revision", "abc"]) == 3
    lines = capsys.readouterr().out.splitlines()
    first = {line.split()[1]: line.split()[0] for line in lines if line.startswith("  ") and len(line.split()) > 2}
    assert first["ok"] == "ok" and first["nan"] == "INCONCLUSIVE" and first["inf"] == "INCONCLUSIVE"
    assert first["big"] == "FAILED" and first["none"] == "EMPTY" and first["two"] == "ERROR"
    assert lines[-1] == (
        "3 returned data, 1 empty, 1 failed, 2 inconclusive (a number the judge cannot use), "
        "1 judged Failed (outside max/min)"
    )
    warned = [line for line in lines if "warning: {{interval}} is 1m" in line]
    assert len(warned) == (7 if prometheus.targets else 0)  # every query of job="fleet"
    assert any("scrape intervals unknown" in line for line in lines) != prometheus.targets


def test_only_usable_numbers_exit_0(prometheus: StandIn, tmp_path: Path, capsys: Any) -> None:
    doc = spec_doc(prometheus.url)
    doc["spec"]["analysis"]["interval"] = "2m"
    doc["spec"]["analysis"]["metrics"] = doc["spec"]["analysis"]["metrics"][:1]
    path = tmp_path / "md.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["check", "-f", str(path), "--revision", "abc"]) == 0
    assert "warning" not in capsys.readouterr().out


# --- Which targets a query reads, and when its range is too short.


def test_targets_are_read_with_their_intervals_and_unreadable_ones_left_out() -> None:
    assert targets_of({"data": None}.get("data")) == []
    assert [(t.labels["job"], t.interval) for t in targets_of(TARGETS)] == [
        ("fleet", 30.0),
        ("fleet", 30.0),
        ("other", 15.0),
    ]


@pytest.mark.parametrize(
    ("selector", "scrape", "matched"),
    [
        ('x{job="other"}', 15.0, True),
        ('x{job=~"oth.*"}', 15.0, True),
        ('x{job!="fleet"}', 15.0, True),
        ('x{job!~"f.*"}', 15.0, True),
        ('x{revision="abc"}', 30.0, True),  # a label no target has: every target may be read
        ('x{job="elsewhere"}', 30.0, False),  # no target matches: the slowest of all, and it says so
    ],
)
def test_the_slowest_target_a_selector_may_read_sets_the_interval(selector: str, scrape: float, matched: bool) -> None:
    [check] = check_ranges(f"sum(rate({selector}[1m]))", targets_of(TARGETS))
    assert (check.scrape_seconds, check.matched, check.range_seconds) == (scrape, matched, 60.0)


def test_the_warning_names_the_shortest_range_and_what_to_set() -> None:
    checks = [RangeCheck(300, 30, 2, True), RangeCheck(60, 30, 2, True), RangeCheck(90, 30, 2, False)]
    said = warning(checks, 60)
    assert said is not None and said.startswith("{{interval}} is 1m, shorter than 4 scrape intervals of 30s")
    assert warning(checks, 45) is not None and warning(checks, 45).startswith("the range is 1m")  # type: ignore[union-attr]
    assert warning([RangeCheck(120, 30, 1, True)], 120) is None
    assert check_ranges("sum(rate(x[1m])", [Target({}, 30)]) == []  # unparsable: Prometheus will say why
    assert check_ranges("sum(rate(x[1m]))", []) == []  # no targets known: nothing to compare
