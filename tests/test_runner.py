"""The runner: a status and a result for every run, and ./kx judge re-judges
a saved log to the same verdict."""
import json

import pytest

from kxbench import cli, kbuild, machine, results, runner
from kxbench.scenarios import SCENARIOS, common, kexec_reboot
from kxbench.util import KxError
from test_verdicts import reboot_expect, reboot_lines


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Results and run directories in TMP_PATH; no kernel is built."""
    monkeypatch.setattr(results, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(common, "RUNS", tmp_path / "runs")
    return tmp_path


def fake_scenario(monkeypatch, run):
    class Fake:
        pass
    fake = Fake()
    fake.run, fake.judge = run, kexec_reboot.judge
    monkeypatch.setitem(SCENARIOS, "kexec-reboot", fake)


def write_log(ctx, lines, exit_code=0):
    ctx.log.parent.mkdir(parents=True, exist_ok=True)
    ctx.log.write_text("# qemu-system-aarch64 -M virt\n" +
                       "".join(f"[{i:9.3f}] {t}\n" for i, t in enumerate(lines)) +
                       f"# exit {exit_code} after {len(lines):.3f} s\n")
    return machine.read_log(ctx.log)


def judged_run(lines):
    """A scenario run() that 'boots' by writing LINES to the log, then judges
    the log as a real run judges what it saw."""
    def run(ctx):
        ctx.log = results.RESULTS / f"{ctx.run_id}.log"
        (boot,) = write_log(ctx, lines)
        ctx.judge_args = [{**reboot_expect(), "token": "0123456789abcdef"}]
        return kexec_reboot.judge(boot, ctx, *ctx.judge_args)
    return run


def test_status_of_each_kind_of_verdict():
    v = common.Verdict()
    assert runner.status_of(v) == "PASS"
    v.require(False, "x")
    assert runner.status_of(v) == "FAIL"
    v.timed_out = True
    assert runner.status_of(v) == "TIMEOUT"
    v.crash = "Kernel panic - not syncing"
    assert runner.status_of(v) == "CRASH"
    assert set(runner.EXIT) == set(runner.STATUSES)


@pytest.mark.parametrize("exc, status", [
    (kbuild.BuildError("build of series/4k-48 failed"), "BUILD_FAILURE"),
    (KxError("QEMU went away"), "INFRA_ERROR"),
    (KeyError("oops"), "INFRA_ERROR"),
])
def test_every_run_gets_a_result_even_when_nothing_was_judged(sandbox, monkeypatch, exc,
                                                              status):
    def run(ctx):
        raise exc
    fake_scenario(monkeypatch, run)
    verdict, path, ctx = runner.run_scenario("kexec-reboot", append="rodata=full", gens=2)
    record = json.loads(path.read_text())
    assert verdict.status == record["status"] == status
    assert record["verdict"] == "fail" and record["reasons"]
    assert (record["append"], record["gens"]) == ("rodata=full", 2)
    assert runner.one_line(verdict, ctx, path).startswith(status + " ")
    assert runner.EXIT[status] == 2


def test_a_result_can_be_judged_again_from_its_log(sandbox, monkeypatch):
    lines = reboot_lines()
    fake_scenario(monkeypatch, judged_run(lines))
    verdict, path, ctx = runner.run_scenario("kexec-reboot")
    assert verdict.status == "PASS", verdict.reasons
    again, record = runner.rejudge(ctx.log)
    assert again.status == "PASS" and record["judge_args"]
    assert cli.main(["judge", str(ctx.log)]) == 0
    # The same log with the payload's checksum changed: the judge says FAIL.
    text = ctx.log.read_text().replace("sha256=" + "a" * 64, "sha256=" + "b" * 64)
    ctx.log.write_text(text)
    again, _ = runner.rejudge(ctx.log)
    assert again.status == "FAIL" and any("sha256" in r for r in again.reasons)
    assert cli.main(["judge", str(ctx.log)]) == 1


def test_judge_refuses_a_log_without_its_record(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("# qemu-system-aarch64\n")
    with pytest.raises(KxError, match="x.json"):
        runner.rejudge(log)


def test_read_log_splits_boots_and_keeps_exit_and_timeout(tmp_path):
    log = tmp_path / "r.log"
    log.write_text("# qemu-system-aarch64 a\n[    0.500] KX-BOOT gen=0\n# exit 0 after 1.5 s\n"
                   "# qemu-system-aarch64 b\n[    0.250] hello\n"
                   "# killed by the workbench after 9 s\n# exit None after 9.0 s\n")
    a, b = machine.read_log(log)
    assert [ln.text for ln in a.lines] == ["KX-BOOT gen=0"] and a.lines[0].t == 0.5
    assert (a.exit_code, a.timed_out, a.seconds) == (0, False, 1.5)
    assert (b.exit_code, b.timed_out) == (None, True)
