"""One run of one scenario: a status and a result file, whatever happens.

The judge (kxbench/scenarios/) gives the verdict; the runner names what
kind of outcome it was and writes build/results/<run>.json for every run,
also when the kernel did not build or the workbench itself failed.
"""
import json
import traceback
from pathlib import Path

from . import kbuild, machine, results
from .scenarios import SCENARIOS, common, kexec_chain
from .util import KxError

STATUSES = {
    "PASS": "the judge found every piece of evidence it requires",
    "FAIL": "the guest ran to its end and the judge found evidence missing or wrong",
    "TIMEOUT": "a boot was killed by the workbench after its time was up",
    "CRASH": "a kernel panicked, oopsed or hit a BUG that the scenario does not expect",
    "BUILD_FAILURE": "the kernel or a test program did not build: no guest ran",
    "INFRA_ERROR": "the workbench failed (QEMU, gdbstub, a download, a bug of ours): "
                   "this says nothing about the kernel",
}
# PASS exits 0, a verdict against the kernel 1, no verdict at all 2.
EXIT = {"PASS": 0, "FAIL": 1, "TIMEOUT": 1, "CRASH": 1, "BUILD_FAILURE": 2, "INFRA_ERROR": 2}


def status_of(verdict):
    """The status of a judged run: a crash explains more than the timeout or
    the missing evidence it causes."""
    if verdict.passed:
        return "PASS"
    if verdict.crash:
        return "CRASH"
    if verdict.timed_out:
        return "TIMEOUT"
    return "FAIL"


def no_verdict(why, first_line):
    v = common.Verdict()
    v.require(False, why)
    v.first_bad_line = first_line
    return v


def context(name, kernel="series", config="4k-48", profile="dt-el2", cpu=None, mem=None,
            smp=1, payload_mib=32, gens=None, timeout=None, append="", tree=None,
            variant=""):
    if name not in SCENARIOS:
        raise KxError(f"unknown scenario {name!r}: choose from {', '.join(SCENARIOS)}")
    if gens is None:
        gens = kexec_chain.DEFAULT_GENS if name == "kexec-chain" else 1
    return common.Context(scenario=name, kernel=kernel, config=config, profile=profile,
                          cpu=cpu, mem=mem, smp=smp, payload_mib=payload_mib, gens=gens,
                          timeout=timeout, append_extra=append, tree=tree, variant=variant)


def run_scenario(name, **kw):
    """Run one scenario; write its result; return (verdict, result path, ctx).
    verdict.status is one of STATUSES."""
    ctx = context(name, **kw)
    try:
        verdict = SCENARIOS[name].run(ctx)
        verdict.status = status_of(verdict)
    except kbuild.BuildError as exc:
        verdict = no_verdict(str(exc), "(the guest was not booted)")
        verdict.status = "BUILD_FAILURE"
    except KxError as exc:
        verdict = no_verdict(f"workbench: {exc}", "(no verdict)")
        verdict.status = "INFRA_ERROR"
    except Exception as exc:  # noqa: BLE001 -- a bug of ours still gets a result
        tail = traceback.format_exc().strip().splitlines()[-6:]
        verdict = no_verdict(f"workbench bug: {exc!r}: " + " | ".join(tail), "(no verdict)")
        verdict.status = "INFRA_ERROR"
    finally:
        common.cleanup(ctx)
    return verdict, results.write(ctx, verdict), ctx


def one_line(verdict, ctx, path):
    cell = f"{ctx.scenario} {ctx.kernel}/{ctx.config} {ctx.profile} {ctx.cpu} " \
           f"mem={ctx.mem} smp={ctx.smp}" + (f" append={ctx.append_extra!r}"
                                               if ctx.append_extra else "")
    if verdict.status == "PASS":
        return f"PASS {cell} (result {path})"
    return (f"{verdict.status} {cell}: {'; '.join(verdict.reasons)}; first bad line: "
            f"{verdict.first_bad_line!r} (log {ctx.log}, result {path})")


def rejudge(log):
    """Judge a saved run again from its log and the result beside it (or a
    golden log's trimmed record): (verdict, record)."""
    log = Path(log)
    path = log.with_suffix(".json")
    if not log.exists() or not path.exists():
        raise KxError(f"{log}: a log and its result {path.name} are needed")
    record = json.loads(path.read_text())
    if record.get("judge_args") is None:
        raise KxError(f"{path} keeps no judge_args: this run predates ./kx judge, or its "
                      "guest never booted")
    module = SCENARIOS[record["scenario"]]
    boots = machine.read_log(log)
    want = getattr(module, "BOOTS", 1)
    if len(boots) != want:
        raise KxError(f"{log} holds {len(boots)} boots; {record['scenario']}'s judge takes "
                      f"{want}")
    ctx = common.Context(scenario=record["scenario"], kernel=record["kernel"],
                         config=record["config"], profile=record["profile"],
                         cpu=record["cpu"], mem=record["mem"], smp=record["smp"],
                         payload_mib=record["payload_mib"], gens=record.get("gens", 1),
                         timeout=record.get("timeout"), append_extra=record.get("append", ""),
                         variant=record.get("variant", ""), run_id=record["run"],
                         tree=(record.get("tree") or {}).get("path"))
    verdict = module.judge(*boots, ctx, *record["judge_args"])
    verdict.status = status_of(verdict)
    return verdict, record
