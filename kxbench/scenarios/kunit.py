"""kunit: boot a kernel built with KUnit and the project's suites; the host
parses the KTAP the suites print at boot. Passes only if every expected
suite ran at least one case and every case said ok."""
import re

from .. import kbuild, machine, userland
from . import common

# Each suite and the fewest cases it has, by kernel line: a suite that lost
# cases fails. The v6.12 series tests only the copy of the linear map (and
# the EL2 vectors), its own code; v5.10's suite also covers the identity map
# and the single-page map the series writes there.
SUITES = {"5.10": {"arm64_trans_pgd": 6}, "6.12": {"arm64_trans_pgd": 5}}
PRINTK_TIME = re.compile(r"^\[\s*\d+\.\d+\]\s?")


def run(ctx):
    image = common.build(ctx, "kunit")
    work = common.fresh_workdir(ctx)
    initrd = userland.build_initramfs(work / "initrd.cpio", userland.prepare())
    boot = machine.boot(ctx.spec(image, initrd, ctx.append("kx.gen=0")), ctx.log,
                        ctx.boot_timeout())
    line = kbuild.kernel_line(kbuild.source_dir(ctx.kernel, ctx.tree))
    ctx.judge_args = [{"suites": SUITES.get(line, SUITES["5.10"])}]
    return judge(boot, ctx, *ctx.judge_args)


# The header KUnit prints before its results: TAP version 14 in v5.10, KTAP
# version 1 in v6.12, whose result lines also drop the " - " before a name.
KTAP_HEADERS = ("TAP version 14", "KTAP version 1")


def parse_ktap(texts):
    """{suite: {"ok": bool, "cases": {name: bool}}} from (K)TAP lines."""
    suites, current = {}, None
    for raw in texts:
        line = PRINTK_TIME.sub("", raw)
        m = re.match(r"^\s+# Subtest: (\S+)", line)
        if m:
            current = suites.setdefault(m.group(1), {"ok": False, "cases": {}})
            continue
        m = re.match(r"^(\s*)(not ok|ok) \d+(?: -)? (\S+)", line)
        if not m:
            continue
        ok = m.group(2) == "ok"
        if m.group(1) and current is not None:
            current["cases"][m.group(3)] = ok
        elif m.group(3) in suites:
            suites[m.group(3)]["ok"] = ok
            current = None
    return suites


def judge(boot, ctx, expect):
    v = common.Verdict()
    texts = [ln.text for ln in boot.lines]
    v.require(any(PRINTK_TIME.sub("", t).strip() in KTAP_HEADERS for t in texts),
              "no KTAP header: KUnit did not run")
    suites = parse_ktap(texts)
    for name in expect["suites"]:
        suite = suites.get(name)
        if not v.require(suite is not None, f"suite {name} did not run"):
            continue
        failed = [c for c, ok in suite["cases"].items() if not ok]
        v.require(len(suite["cases"]) >= expect["suites"][name],
                  f"suite {name} ran {len(suite['cases'])} cases, expected at least "
                  f"{expect['suites'][name]}")
        v.require(not failed, f"suite {name}: failed cases {', '.join(failed)}")
        v.require(suite["ok"], f"suite {name} did not report ok")
    common.check_boot_line(v, boot, ctx, gen=0)
    v.require(common.find(boot, "KX-DONE", gen=0)[0] is not None,
              "the guest did not finish (no KX-DONE)")
    common.check_exit(v, boot, ctx)
    v.evidence |= {"suites": suites}
    v.metrics = {"cases": sum(len(s["cases"]) for s in suites.values())}
    if not v.passed and v.first_bad_line is None:
        v.first_bad_line = common.first_bad(boot)
    return v
