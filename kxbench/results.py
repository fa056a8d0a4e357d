"""Result records: build/results/<run>.json beside the full serial log."""
import json
import subprocess
import time

from . import kbuild
from .util import BUILD

RESULTS = BUILD / "results"


def qemu_version():
    try:
        out = subprocess.run(["qemu-system-aarch64", "--version"], capture_output=True,
                             text=True).stdout
        return out.splitlines()[0] if out else "unknown"
    except OSError:
        return "absent"


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
        "verdict": "pass" if verdict.passed else "fail",
        "reasons": verdict.reasons,
        "evidence": verdict.evidence,
        "metrics": verdict.metrics,
        "log": str(ctx.log),
        "first_bad_line": verdict.first_bad_line,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ctx.started)),
        "duration_s": round(time.time() - ctx.started, 3),
        "qemu": qemu_version(),
    }
    if ctx.tree:
        record["tree"] = {"path": str(ctx.tree), "state": kbuild.git_state(ctx.tree)}
    if ctx.kernel == "series":
        # Which version of the series ran: ./kx cover counts only the current one.
        record["source_tree"] = kbuild.source_tree_id(kbuild.source_dir("series"))
    path = RESULTS / f"{ctx.run_id}.json"
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path
