"""selftests: the kexec kselftests of the kernel tree under test
(tools/testing/selftests/kexec/), cross-built static on the host and run in
the guest as root, which prints their TAP between KX-TAP-BEGIN and
KX-TAP-END, nested as kselftest's runner nests it. The host parses the TAP
and passes only if every expected case reported ok; a case may be skipped
only where the profile cannot run it, and is then listed as skipped."""
import re
import secrets

from .. import kbuild, machine, userland, util
from ..initramfs import Cpio
from . import common, features, kexec_reboot, memory_hotplug

SELFTESTS = "tools/testing/selftests/kexec"
# Every case the kernel side promises, by program (kselftest harness TESTs).
PROGRAMS = {
    "kexec_load_test": (
        "overlapping_segments", "segment_outside_ram", "segment_in_nomap_region",
        "too_many_segments", "bufsz_larger_than_memsz", "unaligned_mem", "null_buffer",
        "entry_outside_segments", "crash_segment_outside_crashkernel", "no_cap_sys_boot",
        "load_unload_does_not_leak"),
    "kexec_file_load_test": ("load_and_unload",),
    "kexec_stress_test": (
        "load_fails_cleanly_at_each_allocation", "crash_load_fails_cleanly_at_each_allocation",
        "file_load_fails_cleanly_at_each_allocation",
        "crash_file_load_fails_cleanly_at_each_allocation",
        "fuzzed_segment_lists_match_the_model", "concurrent_loads_and_unloads",
        "load_races_memory_offline"),
}
# What each series' kselftests promise, by the kernel line of the tree under
# test: the v6.12 series has the segment-list and file-load cases, and a
# normal image refused the crash kernel region, not the stress test. A line
# with none of its own is held to v5.10's.
PROGRAMS_OF = {"5.10": PROGRAMS,
               "6.12": {"kexec_load_test": (*PROGRAMS["kexec_load_test"],
                                            "normal_segment_in_crash_region"),
                        "kexec_file_load_test": PROGRAMS["kexec_file_load_test"]}}


def programs_for(src):
    return PROGRAMS_OF.get(kbuild.kernel_line(src), PROGRAMS)


# fail-nth needs fault injection, which only the debug build variant has.
# Each case sweeps one call, whose name its summary line gives.
FAIL_NTH_CALLS = {"load_fails_cleanly_at_each_allocation": "kexec_load",
                  "crash_load_fails_cleanly_at_each_allocation": "kexec_load_crash",
                  "file_load_fails_cleanly_at_each_allocation": "kexec_file_load",
                  "crash_file_load_fails_cleanly_at_each_allocation": "kexec_file_load_crash"}
FAULT_INJECTION = tuple(("kexec_stress_test", case) for case in FAIL_NTH_CALLS)
# The fuzzer's seed: chosen here, passed on the command line, printed by the
# test and kept in the result, so that a failing run can be replayed.
FUZZ_SEED = "kx.fuzz_seed"
MIN_FUZZ_LISTS = 1000
# The debug variant's run (KASAN, kmemleak, lockdep) fuzzes longer: what it
# catches in a list's error path, a faster kernel would not see.
FUZZ_LISTS = "kx.fuzz_lists"
DEBUG_FUZZ_LISTS = 10000
# The race of a load with memory going offline needs memory hotplug (the
# server variant) and memory the guest can take offline: a DIMM the host
# hot-adds (ACPI, so uefi), which the guest onlines movable.
OFFLINE_RACE = ("kexec_stress_test", "load_races_memory_offline")
DIMM_MIB = 1024


# kx.dimm_state=offline: the guest leaves the DIMM offline, at the top of
# RAM, where the fuzzer's model and kexec_file_load()'s placement must leave
# it out; the race, which needs memory it can take offline, skips.
DIMM_OFFLINE = "kx.dimm_state=offline"


def adds_dimm(ctx):
    return ctx.variant == memory_hotplug.VARIANT and ctx.profile == "uefi"


def check_dimm(v, boot, ctx):
    """The DIMM the host added is there, online movable or, as asked,
    offline: else the race or the offline memory went untested."""
    ln, f = common.find(boot, "KX-SELFTESTS-DIMM")
    if v.require(ln is not None, "the guest saw no DIMM's memory blocks appear"):
        want = 0 if ctx.asks(DIMM_OFFLINE) else f["blocks"]
        v.require(int(f["blocks"]) > 0 and f["online_movable"] == str(want),
                  f"the DIMM's {f['blocks']} blocks: {f['online_movable']} online movable, "
                  f"{want} wanted")


# The scripts that were there before: they need IKCONFIG and IMA or secure
# boot, which no workbench config or profile has, so they may skip (with a
# reason) everywhere; they must never fail.
SCRIPTS = ("test_kexec_load.sh", "test_kexec_file_load.sh")
SCRIPT_FILES = ("kexec_common_lib.sh",)
# nomap memory (top-level "reserved" in /proc/iomem) comes from UEFI.
NOMAP = ("kexec_load_test", "segment_in_nomap_region")
CRASHKERNEL = "crashkernel=64M"


def may_skip(ctx):
    """{(program, case)} that may skip on CTX's profile; a script's case is None."""
    allowed = {(s, None) for s in SCRIPTS}
    if ctx.efi == "no":
        allowed.add(NOMAP)
    if ctx.variant != "debug":
        allowed |= set(FAULT_INJECTION)
    if not adds_dimm(ctx) or ctx.asks(DIMM_OFFLINE):
        allowed.add(OFFLINE_RACE)
    return allowed


def build_tests(src, out, programs):
    """Cross-build the kexec selftests of SRC static into OUT; return which
    of PROGRAMS are missing and a reason, or ([], None)."""
    test_dir = src / SELFTESTS
    missing = [p for p in programs if not (test_dir / f"{p}.c").exists()]
    if missing:
        return missing, (f"{test_dir} has no {', '.join(p + '.c' for p in missing)}: "
                         f"the kernel under test lacks the kexec selftests")
    logf = out / "build.log"
    try:
        util.run(["make", "-C", str(test_dir), "ARCH=arm64",
                  f"CROSS_COMPILE={userland.CROSS}", f"OUTPUT={out}", "LDFLAGS=-static"],
                 logfile=logf)
    except util.KxError as exc:
        return list(programs), f"building the kexec selftests failed: {exc}"
    missing = [p for p in programs if not (out / p).exists()]
    if missing:
        return missing, (f"make in {test_dir} built no {', '.join(missing)} "
                         f"(not in its TEST_GEN_PROGS for arm64?); log {logf}")
    return [], None


def initramfs(path, parts, src, built, image, programs):
    """The root filesystem plus kx/selftests/ (PROGRAMS, scripts, list) and
    kx/Image, the kernel kexec_file_load_test loads."""
    names = list(programs) + list(SCRIPTS)
    with Cpio(path) as cpio:
        userland.write_rootfs(cpio, parts)
        cpio.dir("kx/selftests")
        for p in programs:
            cpio.file(f"kx/selftests/{p}", built / p, perm=0o755)
        for s in SCRIPTS + SCRIPT_FILES:
            cpio.file(f"kx/selftests/{s}", src / SELFTESTS / s, perm=0o755)
        cpio.data("kx/selftests/list", "".join(n + "\n" for n in names).encode())
        cpio.file("kx/Image", image)
    return path


def run(ctx):
    src = kbuild.source_dir(ctx.kernel, ctx.tree)
    work = common.fresh_workdir(ctx)
    (work / "selftests").mkdir()
    programs = programs_for(src)
    missing, why = build_tests(src, work / "selftests", programs)
    if missing:
        v = common.Verdict()
        v.require(False, why)
        v.evidence = {"missing_programs": missing, "tree": str(src)}
        v.first_bad_line = "(the guest was not booted)"
        return v
    image, parts = common.prepare(ctx)
    initrd = initramfs(work / "initrd.cpio", parts, src, work / "selftests", image, programs)
    # After the tests the same system kexec-reboots (kexec_load), so that
    # whatever they did to it, the next kernel must still come up whole.
    nxt, reboot = kexec_reboot.next_initramfs(ctx, parts, work, ctx.token)
    disk = common.data_disk(work / "disk.img", image, nxt)
    # The seed --append kx.fuzz_seed=N asks for, else a fresh one.
    asked = features.kernel_arg(ctx, FUZZ_SEED)
    seed = int(asked) if asked is not None else secrets.randbelow(1 << 32)
    # --append may give its own crashkernel= (with ,high there are two regions).
    crash = [] if "crashkernel=" in ctx.append_extra else [CRASHKERNEL]
    lists = DEBUG_FUZZ_LISTS if ctx.variant == "debug" else None
    words = ["kx.gen=0", *crash] + ([] if asked is not None else [f"{FUZZ_SEED}={seed}"])
    words += [f"{FUZZ_LISTS}={lists}"] if lists else []
    words += ["kx.dimm=1", "memhp_default_state=offline"] if adds_dimm(ctx) else []
    spec = ctx.spec(image, initrd, ctx.append(*words), disk)
    if adds_dimm(ctx):
        spec.dimm_mib, spec.qmp = DIMM_MIB, work / "qmp.sock"
        with memory_hotplug.with_dimm(spec, ctx.log, ctx.boot_timeout() * 2, DIMM_MIB) as (m, _):
            m.wait_exit()
        boot = m.result
    else:
        boot = machine.boot(spec, ctx.log, ctx.boot_timeout() * 2)
    # JSON-able (the result keeps them for ./kx judge): lists, not sets.
    ctx.judge_args = [{"programs": {k: list(c) for k, c in programs.items()},
                       "scripts": list(SCRIPTS), "may_skip": sorted(may_skip(ctx), key=str),
                       "fuzz_seed": seed, "fuzz_lists": lists, "reboot": reboot}]
    return judge(boot, ctx, *ctx.judge_args)


TOP_RESULT = re.compile(r"^(not ok|ok) (\d+) selftests: kexec: (\S+)\s*(?:#\s*(.*))?$")
RESULT = re.compile(r"^(not ok|ok) (\d+)\s*([^#]*?)\s*(?:#\s*(.*))?$")
RUN = re.compile(r"^#\s+RUN\s+(\S+) \.\.\.")
PLAN = re.compile(r"^1\.\.(\d+)$")
LEAK = re.compile(r"free before (\d+) kB, after (\d+) loads (\d+) kB \(tolerance (\d+) kB\)")


def outcome(word, directive):
    """'ok', 'not ok' or 'skip' (an ok with a SKIP directive), and the reason."""
    directive = (directive or "").strip()
    if word == "ok" and directive.upper().startswith("SKIP"):
        return "skip", directive[4:].strip()
    return word, directive


def parse_tap(texts):
    """The TAP between KX-TAP-BEGIN and KX-TAP-END, or None without BEGIN:
    {"plan", "ended", "last", "programs": {name: {"result", "reason", "plan",
    "cases": {case: {"result", "reason"}}, "lines"}}}. A program's result is
    None until its own TAP line; a case's name is its harness name without
    the "global." of a TEST() outside a fixture; a skip the 5.10 harness
    reports as "ok N # SKIP reason" takes the name of the RUN before it."""
    try:
        start = next(i for i, t in enumerate(texts) if t.strip() == "KX-TAP-BEGIN")
    except StopIteration:
        return None
    tap = {"plan": None, "ended": False, "last": "KX-TAP-BEGIN", "programs": {}}
    prog, running = None, None
    for text in texts[start + 1:]:
        text = text.rstrip()
        if text.startswith("KX-TAP-END"):
            tap["ended"] = True
            break
        tap["last"] = text
        if text == "#" or text.startswith("# "):
            inner = text[2:]
            if inner.startswith("selftests: kexec: "):
                prog = tap["programs"].setdefault(inner.split(": ")[-1].strip(), {
                    "result": None, "reason": "", "plan": None, "cases": {}, "lines": []})
                running = None
                continue
            if prog is None:
                continue
            prog["lines"].append(inner)
            m = PLAN.match(inner)
            if m:
                prog["plan"] = int(m.group(1))
            m = RUN.match(inner)
            if m:
                running = m.group(1)
            m = RESULT.match(inner)
            if m:
                name = m.group(3) or running or f"#{m.group(2)}"
                result, reason = outcome(m.group(1), m.group(4))
                prog["cases"][re.sub(r"^global\.", "", name)] = {"result": result,
                                                                  "reason": reason}
                running = None
            continue
        m = PLAN.match(text)
        if m:
            tap["plan"] = int(m.group(1))
        m = TOP_RESULT.match(text)
        if m and m.group(3) in tap["programs"]:
            p = tap["programs"][m.group(3)]
            p["result"], p["reason"] = outcome(m.group(1), m.group(4))
            if p["result"] == "skip" and not p["reason"]:
                said = [ln.strip() for ln in p["lines"] if ln.strip()]
                p["reason"] = said[-1] if said else ""
            prog = None
    return tap


def judge_program(v, summary, name, p, cases, allowed, profile):
    """Require program NAME's TAP to be whole and each of CASES ok, or
    skipped where ALLOWED; record each case in SUMMARY."""
    if p["result"] is None:
        v.require(False, f"{name} did not finish: no TAP result line (output truncated)")
    elif p["result"] == "not ok":
        v.require(False, f"{name}: not ok ({p['reason'] or 'no reason given'})")
    if cases is None:       # a script: no cases of its own
        if p["result"] == "ok":
            summary["passed"].append(name)
        elif p["result"] == "skip":
            summary["skipped"][name] = p["reason"]
            v.require((name, None) in allowed, f"{name} skipped on {profile}: {p['reason']}")
            v.require(bool(p["reason"]), f"{name} skipped without saying why")
        return
    v.require(p["plan"] is not None and len(p["cases"]) == p["plan"],
              f"{name}: planned {p['plan']} cases, reported {len(p['cases'])} "
              f"(output truncated?)")
    for case, r in p["cases"].items():
        if case not in cases and r["result"] == "not ok":
            summary["failed"].append(f"{name}.{case}")
            v.require(False, f"{name}.{case}: not ok")
    for case in cases:
        key, r = f"{name}.{case}", p["cases"].get(case)
        if r is None:
            summary["missing"].append(key)
            v.require(False, f"{key}: no result in the TAP")
        elif r["result"] == "ok":
            summary["passed"].append(key)
        elif r["result"] == "skip":
            summary["skipped"][key] = r["reason"]
            v.require((name, case) in allowed,
                      f"{key} skipped on {profile}, which must run it: {r['reason']}")
        else:
            summary["failed"].append(key)
            v.require(False, f"{key}: not ok")


STRESS = "kexec_stress_test"
FAIL_NTH = re.compile(r"fail-nth (kexec_(?:file_)?load(?:_crash)?): (\d+) injection points, "
                      r"(\d+) of them failing the load, each tried (\d+) times: "
                      r"(\d+) loads failed cleanly")
FUZZ = re.compile(r"fuzz seed (\d+): (\d+) lists, (\d+) loaded, (\d+) refused")
CONCURRENCY = re.compile(r"concurrency: (\d+) s, (\d+) processes: (\d+) loads, (\d+) unloads, "
                         r"(\d+) crash loads, (\d+) file loads, (\d+) crash size writes, "
                         r"(\d+) busy, (\d+) reads")
OFFLINE_RACE_SAYS = re.compile(r"memory offline race: (\d+) s, block (0x[0-9a-f]+)\+(0x[0-9a-f]+): "
                               r"(\d+) loads, (\d+) refused offline, (\d+) offlines, "
                               r"(\d+) refused loaded")
# warn_alloc() reports a failed allocation with a stack dump: under fault
# injection that is the kernel doing what it should, and the one "Call
# trace:" that follows each such report is excused.
ALLOC_FAILURE = re.compile(r"(page allocation failure|vmalloc: allocation failure)")


def console_errors(texts):
    """Console lines with a BAD_MARKERS word, outside the tests' own output
    (behind "#", which may quote the kernel log), less the stack dump of
    each allocation failure report."""
    errors, reports = [], 0
    for t in texts:
        if t.startswith("#"):
            continue
        if ALLOC_FAILURE.search(t):
            reports += 1
        elif "Call trace:" in t and reports:
            reports -= 1
        elif any(m in t for m in common.BAD_MARKERS):
            errors.append(t)
    return errors


def check_stress(v, p, summary, expect):
    """kexec_stress_test's cases that passed must also have printed what
    they did: how many allocations failed, the fuzzer's seed and lists, the
    concurrent loads; their figures go into the metrics."""
    said = "\n".join(p["lines"])
    ok = set(summary["passed"])
    points = {m.group(1): int(m.group(2)) for m in FAIL_NTH.finditer(said)}
    failed = {m.group(1): int(m.group(5)) for m in FAIL_NTH.finditer(said)}
    for case, call in FAIL_NTH_CALLS.items():
        if f"{STRESS}.{case}" in ok and v.require(
                points.get(call, 0) > 0 and failed.get(call, 0) > 0,
                f"{STRESS}.{case}: ok, but no injection point reported, or no load failed"):
            v.metrics[f"fail_nth_{call}_points"] = points[call]
    fuzz = FUZZ.search(said)
    if f"{STRESS}.fuzzed_segment_lists_match_the_model" in ok and v.require(
            fuzz is not None, f"{STRESS}: the fuzzer printed no summary"):
        seed, lists, loaded, refused = (int(x) for x in fuzz.groups())
        if expect.get("fuzz_seed") is not None:
            v.require(seed == expect["fuzz_seed"],
                      f"{STRESS}: fuzzed with seed {seed}, asked for {expect['fuzz_seed']}")
        least = expect.get("fuzz_lists") or MIN_FUZZ_LISTS
        v.require(lists >= least and loaded > 0 and refused > 0,
                  f"{STRESS}: fuzzed {lists} lists ({loaded} loaded, {refused} refused); "
                  f"at least {least}, some of each, were asked for")
        v.metrics |= {"fuzz_seed": seed, "fuzz_lists": lists, "fuzz_loaded": loaded,
                      "fuzz_refused": refused}
    conc = CONCURRENCY.search(said)
    if f"{STRESS}.concurrent_loads_and_unloads" in ok and v.require(
            conc is not None, f"{STRESS}: the concurrency case printed no summary"):
        secs, procs, loads, unloads, crash, files, sizes, busy, reads = (
            int(x) for x in conc.groups())
        v.require(procs > 1 and min(loads, unloads, crash, files, sizes, reads) > 0,
                  f"{STRESS}: the concurrent processes did not all make progress: "
                  f"{conc.group(0)}")
        v.metrics |= {"concurrency_s": secs, "concurrency_loads": loads,
                      "concurrency_crash_loads": crash, "concurrency_file_loads": files,
                      "concurrency_crash_size_writes": sizes, "concurrency_busy": busy}
    race = OFFLINE_RACE_SAYS.search(said)
    if ".".join(OFFLINE_RACE) in ok and v.require(
            race is not None, f"{STRESS}: the race with memory offline printed no summary"):
        loads, load_refusals, offlines, offline_refusals = (int(x) for x in race.groups()[3:])
        v.require(min(loads, load_refusals, offlines, offline_refusals) > 0,
                  f"{STRESS}: the race with memory offline was not run both ways: "
                  f"{race.group(0)}")
        v.metrics |= {"offline_race_loads": loads, "offline_race_load_refusals": load_refusals,
                      "offline_race_offlines": offlines,
                      "offline_race_offline_refusals": offline_refusals}


def judge(boot, ctx, expect):
    v = common.Verdict()
    texts = [ln.text for ln in boot.lines]
    tap = parse_tap(texts)
    summary = {"passed": [], "skipped": {}, "failed": [], "missing": []}
    names = list(expect["programs"]) + list(expect["scripts"])
    allowed = {tuple(k) for k in expect["may_skip"]}
    if v.require(tap is not None, "no KX-TAP-BEGIN: the guest ran no selftests"):
        v.require(tap["ended"], f"the TAP is truncated: no KX-TAP-END after {tap['last']!r}")
        v.require(tap["plan"] == len(names),
                  f"the TAP plans {tap['plan']} programs, expected {len(names)}")
        for name in names:
            cases = expect["programs"].get(name)
            p = tap["programs"].get(name)
            if p is None:
                summary["missing"] += [f"{name}.{c}" for c in cases] if cases else [name]
                v.require(False, f"{name} did not run: it is not in the TAP")
                continue
            judge_program(v, summary, name, p, cases, allowed, ctx.profile)
        leak = [m for p in tap["programs"].values() for ln in p["lines"]
                for m in [LEAK.search(ln)] if m]
        if leak:
            before, after, tol = (int(leak[0].group(i)) for i in (1, 3, 4))
            v.metrics.update({"leak_free_before_kb": before, "leak_free_after_kb": after,
                              "leak_lost_kb": before - after, "leak_tolerance_kb": tol})
        if tap["programs"].get(STRESS):
            check_stress(v, tap["programs"][STRESS], summary, expect)
    if adds_dimm(ctx):
        check_dimm(v, boot, ctx)
    kernel_errors = console_errors(texts)
    if kernel_errors:
        v.require(False, f"the console shows {kernel_errors[0]!r}")
    if expect.get("reboot"):
        _, gens = kexec_reboot.check_generations(v, boot, ctx, expect["reboot"])
        v.evidence["reboot_after_tests"] = gens
    else:   # a result from before the reboot after the tests
        common.check_boot_line(v, boot, ctx, gen=0)
        done, _ = common.find(boot, "KX-DONE", gen=0)
        v.require(done is not None, "the guest did not finish (no KX-DONE)")
    not_ok = [t for t in texts if t.lstrip("# ").startswith("not ok")]
    if not_ok:
        v.first_bad_line = not_ok[0]
    common.check_exit(v, boot, ctx)
    v.evidence |= {"summary": summary, "expected": {
        "programs": {k: list(c) for k, c in expect["programs"].items()},
        "scripts": list(expect["scripts"]),
        "may_skip": sorted(".".join(filter(None, k)) for k in expect["may_skip"])}}
    if tap is not None:
        v.evidence["tap"] = {"plan": tap["plan"], "ended": tap["ended"], "programs": {
            n: {k: x for k, x in p.items() if k != "lines"}
            for n, p in tap["programs"].items()}}
    v.metrics.update({"passed": len(summary["passed"]), "skipped": len(summary["skipped"]),
                      "failed": len(summary["failed"]), "missing": len(summary["missing"])})
    if not v.passed and v.first_bad_line is None:
        v.first_bad_line = common.first_bad(boot)
    return v
