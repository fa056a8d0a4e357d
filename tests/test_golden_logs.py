"""Saved real logs are judged again as they were (tests/fixtures/logs/)."""
from pathlib import Path

import pytest

from kxbench import cli, runner

GOLDEN = sorted((Path(__file__).resolve().parent / "fixtures" / "logs").glob("*.log"))


def test_there_are_golden_logs_that_pass_and_fail():
    statuses = {runner.rejudge(log)[1]["status"] for log in GOLDEN}
    assert {"PASS", "FAIL"} <= statuses


@pytest.mark.parametrize("log", GOLDEN, ids=lambda p: p.stem)
def test_a_saved_log_gets_the_verdict_it_got(log):
    verdict, record = runner.rejudge(log)
    assert verdict.status == record["status"]
    assert verdict.reasons == record["reasons"]
    assert cli.main(["judge", str(log)]) == runner.EXIT[record["status"]]


@pytest.mark.parametrize("log", [p for p in GOLDEN if p.stem.endswith("-pass")
                                 and "] KX-DONE" in p.read_text()], ids=lambda p: p.stem)
def test_a_saved_passing_log_with_its_last_report_cut_fails(log, tmp_path):
    """The same real log, cut before its final KX-DONE: no longer a pass."""
    lines = log.read_text().splitlines(keepends=True)
    last = max(i for i, t in enumerate(lines) if "] KX-DONE" in t)
    cut = tmp_path / log.name
    cut.write_text("".join(lines[:last] + [ln for ln in lines[last + 1:]
                                          if ln.startswith("# ")]))
    cut.with_suffix(".json").write_text(log.with_suffix(".json").read_text())
    verdict, _ = runner.rejudge(cut)
    assert verdict.status == "FAIL", verdict.reasons
