"""Result records: build/results/<run>.json beside the full serial log."""
import json
import subprocess
import time

from . import kbuild, tree
from .util import BUILD

RESULTS = BUILD / "results"


def qemu_version():
    try:
        out = subprocess.run(["qemu-system-aarch64", "--version"], capture_output=True,
                             text=True).stdout
        return out.splitlines()[0] if out else "unknown"
    except OSError:
        return "absent"


def as_list(value):
    """JSON has no sets: a judge's set of allowed cases is kept as a list."""
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def write(ctx, verdict):
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {
        "run": ctx.run_id,
        "scenario": ctx.scenario,
        "kernel": ctx.kernel,
        "config": ctx.config,
        "profile": ctx.profile,
        "cpu": ctx.cpu,
        "mem": ctx.mem,
        "smp": ctx.smp,
        "payload_mib": ctx.payload_mib,
        "status": verdict.status or ("PASS" if verdict.passed else "FAIL"),
        "verdict": "pass" if verdict.passed else "fail",
        "append": ctx.append_extra,
        "gens": ctx.gens,
        "variant": ctx.variant,
        "timeout": ctx.timeout,
        "reasons": verdict.reasons,
        "evidence": verdict.evidence,
        "metrics": verdict.metrics,
        "log": str(ctx.log),
        "first_bad_line": verdict.first_bad_line,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ctx.started)),
        "duration_s": round(time.time() - ctx.started, 3),
        "qemu": qemu_version(),
    }
    # What the kernel that ran was built from, recorded when it was built.
    build = kbuild.build_record(ctx.image)
    record["build"] = build
    if ctx.tree:
        record["tree"] = {"path": str(ctx.tree), "state": build.get("git_state")}
    if tree.of_kernel(ctx.kernel):
        # Which version of the series ran: ./kx cover counts only the current one.
        record["source_tree"] = build.get("source_tree")
        record["series_version"] = build.get("series_version")
    # Everything the judge took besides the log: ./kx judge re-judges from these.
    record["judge_args"] = ctx.judge_args
    path = RESULTS / f"{ctx.run_id}.json"
    path.write_text(json.dumps(record, indent=2, sort_keys=True, default=as_list) + "\n")
    return path
