"""The selftests verdict: it passes only when every expected kselftest case
said ok, and lists allowed skips as skipped, never as passed."""
from pathlib import Path

import pytest

from kxbench import kbuild, runner, util
from kxbench.machine import Boot, Line
from kxbench.scenarios import common, selftests

NOMAP = "kexec_load_test.segment_in_nomap_region"


SEED = 1234
TOKEN = "5e1f7e575e1f7e57"
SHA = "ab" * 32


def ctx(profile, variant="debug"):
    return common.Context(scenario="selftests", profile=profile, variant=variant)


def expect(c):
    return {"programs": selftests.PROGRAMS, "scripts": selftests.SCRIPTS,
            "may_skip": selftests.may_skip(c), "fuzz_seed": SEED,
            "reboot": {"token": TOKEN, "sha256": SHA, "payload_bytes": 32 << 20, "gens": 1,
                       "mode": "load"}}


# What kexec_stress_test prints of its work (TH_LOG), by case.
STRESS_SAYS = {
    "load_fails_cleanly_at_each_allocation":
        "fail-nth kexec_load: 23 injection points, 21 of them failing the load, each tried "
        "17 times: 357 loads failed cleanly (ENOMEM 357, EFAULT 0), 2 went on",
    "crash_load_fails_cleanly_at_each_allocation":
        "fail-nth kexec_load_crash: 7 injection points, 3 of them failing the load, each "
        "tried 17 times: 51 loads failed cleanly (ENOMEM 51, EFAULT 0), 4 went on",
    "file_load_fails_cleanly_at_each_allocation":
        "fail-nth kexec_file_load: 324 injection points, 50 of them failing the load, each "
        "tried 17 times: 850 loads failed cleanly (ENOMEM 850, EFAULT 0), 274 went on",
    "crash_file_load_fails_cleanly_at_each_allocation":
        "fail-nth kexec_file_load_crash: 64 injection points, 40 of them failing the load, "
        "each tried 17 times: 680 loads failed cleanly (ENOMEM 680, EFAULT 0), 24 went on",
    "fuzzed_segment_lists_match_the_model":
        f"fuzz seed {SEED}: 3000 lists, 412 loaded, 2588 refused (EINVAL 1500, "
        f"EADDRNOTAVAIL 1000, EFAULT 88)",
    "concurrent_loads_and_unloads":
        "concurrency: 10 s, 6 processes: 812 loads, 800 unloads, 301 crash loads, "
        "95 file loads, 1200 crash size writes, 977 busy, 52000 reads",
    "load_races_memory_offline":
        "memory offline race: 10 s, block 0x8000000000+0x40000000: 61 loads, 3020 refused "
        "offline, 14 offlines, 250 refused loaded",
}


def program(n, name, cases, skip=(), fail=(), drop=()):
    """What guest/init prints for one C program, as the 5.10 harness writes it."""
    run = [c for c in cases if c not in drop]
    out = [f"# selftests: kexec: {name}", "# TAP version 13", f"# 1..{len(run)}",
           f"# # Starting {len(run)} tests from 1 test cases."]
    for i, case in enumerate(run, 1):
        out.append(f"# #  RUN           global.{case} ...")
        if case in skip:
            out += [f"# #      SKIP      no {case} here", f"# #            OK  global.{case}",
                    f"# ok {i} # SKIP no {case} here"]
            continue
        if case in STRESS_SAYS:
            out.append(f"# # {name}.c:100:{case}:{STRESS_SAYS[case]}")
        if case in fail:
            out += [f"# #            FAIL  global.{case}", f"# not ok {i} global.{case}"]
        else:
            out += [f"# #            OK  global.{case}", f"# ok {i} global.{case}"]
    if name == "kexec_load_test":
        out.insert(-1, "# # kexec_load_test.c:535:load_unload_does_not_leak:free before "
                       "939088 kB, after 200 loads 939080 kB (tolerance 64 kB)")
    word = "not ok" if fail else "ok"
    return out + [f"{word} {n} selftests: kexec: {name}" + (" # exit=1" if fail else "")]


def features(gen):
    return (f"KX-FEATURES gen={gen} role=main vhe=no kvm=none kpti=no pac=no va_bits=48 "
            f"checkers=kasan,kmemleak,lockdep,faults")


def reboot(efi):
    """The kexec reboot after the tests, into a kernel with TOKEN."""
    return ["KX-PLACEMENT gen=0 kernel_code=40200000-4053ffff kernel_data=405d0000-406affff "
            "segments=0x40000000+0x4b0000, placement=default",
            "KX-LOADED gen=0 mode=load load_ns=1271135168 memfree_before_kb=953284 "
            "memfree_after_kb=906412 segment_bytes=47458816 loaded=1",
            "KX-KLOG gen=0 role=main warnings=0 bugs=0 oopses=0 kasan=0 kmemleak=0",
            "KX-EXEC gen=0",
            f"KX-BOOT scenario=selftests gen=1 role=main el=2 efi={efi} acpi=no cpus=1 "
            f"memfree_kb=968472 boot_id=b1 release=5.10.223-kx", features(1),
            f"KX-GEN gen=1 token={TOKEN} sha256={SHA} payload_bytes=33554432 el=2 efi={efi}",
            "KX-KLOG gen=1 role=main warnings=0 bugs=0 oopses=0 kasan=0 kmemleak=0",
            "KX-DONE gen=1"]


def guest(efi="no", skip=(), fail=(), drop=(), script="ok"):
    total = len(selftests.PROGRAMS) + len(selftests.SCRIPTS)
    out = [f"KX-BOOT scenario=selftests gen=0 role=main el=2 efi={efi} acpi=no cpus=1 "
           f"memfree_kb=939000 boot_id=b0 release=5.10.223-kx", features(0),
           "KX-TAP-BEGIN", "TAP version 13", f"1..{total}"]
    for n, (name, cases) in enumerate(selftests.PROGRAMS.items(), 1):
        out += program(n, name, cases, skip, fail, drop)
    for n, name in enumerate(selftests.SCRIPTS, len(selftests.PROGRAMS) + 1):
        out.append(f"# selftests: kexec: {name}")
        if script == "skip":
            out += ["# extract-ikconfig not found", f"ok {n} selftests: kexec: {name} # SKIP"]
        elif script == "fail":
            out += ["# kexec_load failed [FAIL]", f"not ok {n} selftests: kexec: {name} # exit=1"]
        else:
            out += ["# kexec_load succeeded [PASS]", f"ok {n} selftests: kexec: {name}"]
    return out + [f"KX-TAP-END programs={total}"] + reboot(efi)


def judge(lines, profile="uefi", timed_out=False, variant="debug", **asked):
    c = ctx(profile, variant)
    b = Boot(lines=[Line(float(i), t) for i, t in enumerate(lines)], timed_out=timed_out,
             exit_code=None if timed_out else 0)
    return selftests.judge(b, c, {**expect(c), **asked})


def test_passes_when_every_case_said_ok():
    v = judge(guest(efi="yes"))
    assert v.passed, v.reasons
    assert NOMAP in v.evidence["summary"]["passed"]
    assert len(v.evidence["summary"]["passed"]) == 21 and not v.evidence["summary"]["skipped"]
    assert v.metrics["leak_lost_kb"] == 8 and v.metrics["leak_tolerance_kb"] == 64
    assert v.metrics["fail_nth_kexec_load_points"] == 23
    assert v.metrics["fail_nth_kexec_file_load_points"] == 324
    assert (v.metrics["fuzz_seed"], v.metrics["fuzz_lists"]) == (SEED, 3000)
    assert v.metrics["concurrency_crash_loads"] == 301
    assert v.evidence["reboot_after_tests"][0]["token"] == TOKEN


def test_nomap_may_skip_on_dt_and_is_listed_as_skipped_not_passed():
    v = judge(guest(skip=["segment_in_nomap_region"], script="skip"), profile="dt-el2")
    assert v.passed, v.reasons
    s = v.evidence["summary"]
    assert s["skipped"][NOMAP] == "no segment_in_nomap_region here"
    assert NOMAP not in s["passed"]
    assert s["skipped"]["test_kexec_load.sh"] == "extract-ikconfig not found"
    assert v.metrics["skipped"] == 3


def test_a_not_ok_case_fails():
    v = judge(guest(efi="yes", fail=["null_buffer"]))
    assert not v.passed
    assert "kexec_load_test.null_buffer: not ok" in v.reasons
    assert v.evidence["summary"]["failed"] == ["kexec_load_test.null_buffer"]
    assert v.first_bad_line == "# not ok 7 global.null_buffer"


def test_a_missing_case_fails():
    v = judge(guest(efi="yes", drop=["entry_outside_segments"]))
    assert not v.passed
    assert "kexec_load_test.entry_outside_segments: no result in the TAP" in v.reasons
    assert v.evidence["summary"]["missing"] == ["kexec_load_test.entry_outside_segments"]


def test_a_skip_the_profile_must_run_fails():
    v = judge(guest(efi="yes", skip=["segment_in_nomap_region"]), profile="uefi")
    assert not v.passed
    assert any(r.startswith(f"{NOMAP} skipped on uefi, which must run it") for r in v.reasons)
    # The crash kernel region exists on every profile: its case must never skip.
    v = judge(guest(skip=["segment_in_nomap_region", "crash_segment_outside_crashkernel"]),
              profile="dt-el2")
    assert not v.passed
    assert any("crash_segment_outside_crashkernel skipped on dt-el2" in r for r in v.reasons)


def test_a_truncated_log_fails():
    lines = guest(efi="yes")
    cut = lines[:lines.index("# ok 5 global.bufsz_larger_than_memsz") + 1]
    v = judge(cut, timed_out=True)
    assert not v.passed
    assert any("TAP is truncated" in r for r in v.reasons)
    assert any("kexec_load_test did not finish" in r for r in v.reasons)
    assert "kexec_load_test.unaligned_mem" in v.evidence["summary"]["missing"]
    assert any("timed out" in r for r in v.reasons)


def test_no_tap_fails():
    v = judge(guest(efi="yes")[:1])
    assert not v.passed
    assert "no KX-TAP-BEGIN: the guest ran no selftests" in v.reasons


def test_a_failing_script_fails_and_a_silent_skip_fails():
    assert not judge(guest(efi="yes", script="fail")).passed
    lines = [t for t in guest(efi="yes", script="skip") if t != "# extract-ikconfig not found"]
    v = judge(lines)
    assert not v.passed
    assert "test_kexec_load.sh skipped without saying why" in v.reasons


def test_a_kernel_error_on_the_console_fails():
    lines = guest(efi="yes")
    lines.insert(10, "[   12.000000] Internal error: Oops: 96000004 [#1] SMP")
    v = judge(lines)
    assert not v.passed
    assert any("Internal error" in r for r in v.reasons)


def test_parser_names_a_skip_by_its_run_line_or_its_own_name():
    """The 5.10 harness prints 'ok N # SKIP why'; later ones name the case."""
    tap = selftests.parse_tap(["KX-TAP-BEGIN", "1..1", "# selftests: kexec: t",
                               "# #  RUN           global.a ...", "# ok 1 # SKIP no a",
                               "# ok 2 global.b # SKIP no b", "# ok 3 global.c",
                               "ok 1 selftests: kexec: t", "KX-TAP-END"])
    assert tap["ended"] and tap["programs"]["t"]["result"] == "ok"
    assert tap["programs"]["t"]["cases"] == {"a": {"result": "skip", "reason": "no a"},
                                             "b": {"result": "skip", "reason": "no b"},
                                             "c": {"result": "ok", "reason": ""}}


def test_a_tree_without_the_selftests_fails_naming_what_is_missing(tmp_path):
    (tmp_path / selftests.SELFTESTS).mkdir(parents=True)
    missing, why = selftests.build_tests(tmp_path, tmp_path / "out", selftests.PROGRAMS)
    assert missing == list(selftests.PROGRAMS)
    assert str(tmp_path / selftests.SELFTESTS) in why
    assert "kexec_load_test.c, kexec_file_load_test.c" in why


def test_a_run_from_a_tree_is_labelled_tree():
    c = common.Context(scenario="selftests", kernel="series", tree="build/linux-st")
    assert c.kernel == "tree" and c.tree.startswith("/")


FAIL_NTH = list(selftests.FAIL_NTH_CALLS)


def test_fail_nth_may_skip_without_fault_injection_but_must_run_on_debug():
    v = judge(guest(efi="yes", skip=FAIL_NTH), variant="")
    assert v.passed, v.reasons
    assert set(v.evidence["summary"]["skipped"]) == {f"kexec_stress_test.{c}" for c in FAIL_NTH}
    v = judge(guest(efi="yes", skip=FAIL_NTH[1:]), variant="debug")
    assert not v.passed
    assert any(r.startswith(f"kexec_stress_test.{FAIL_NTH[1]} skipped on uefi, which must run")
               for r in v.reasons)


def without(lines, text):
    return [t for t in lines if text not in t]


def swap(lines, old, new):
    return [t.replace(old, new) for t in lines]


def test_a_stress_case_that_says_ok_must_show_its_work():
    v = judge(without(guest(efi="yes"), "fail-nth kexec_file_load:"))
    assert not v.passed
    assert ("kexec_stress_test.file_load_fails_cleanly_at_each_allocation: ok, but no "
            "injection point reported, or no load failed") in v.reasons
    v = judge(swap(guest(efi="yes"), "51 loads failed cleanly", "0 loads failed cleanly"))
    assert ("kexec_stress_test.crash_load_fails_cleanly_at_each_allocation: ok, but no "
            "injection point reported, or no load failed") in v.reasons
    v = judge(swap(guest(efi="yes"), f"fuzz seed {SEED}:", "fuzz seed 99:"))
    assert "kexec_stress_test: fuzzed with seed 99, asked for 1234" in v.reasons
    v = judge(swap(guest(efi="yes"), "3000 lists", "300 lists"))
    assert any("fuzzed 300 lists" in r for r in v.reasons)
    for made in ("301 crash loads", "95 file loads", "1200 crash size writes"):
        v = judge(swap(guest(efi="yes"), made, "0 " + made.split(" ", 1)[1]))
        assert any("did not all make progress" in r for r in v.reasons), made
    v = judge(without(guest(efi="yes"), "concurrency: "))
    assert "kexec_stress_test: the concurrency case printed no summary" in v.reasons
    for won in ("61 loads", "3020 refused offline", "14 offlines", "250 refused loaded"):
        v = judge(swap(guest(efi="yes"), won, "0 " + won.split(" ", 1)[1]))
        assert any("race with memory offline was not run both ways" in r
                   for r in v.reasons), won
    v = judge(without(guest(efi="yes"), "memory offline race: "))
    assert "kexec_stress_test: the race with memory offline printed no summary" in v.reasons


RACE = "load_races_memory_offline"


def test_the_race_with_memory_offline_may_skip_only_without_a_hot_added_dimm():
    v = judge(guest(efi="yes", skip=FAIL_NTH + [RACE]), variant="")
    assert v.passed, v.reasons
    assert f"kexec_stress_test.{RACE}" in v.evidence["summary"]["skipped"]
    v = judge(guest(efi="yes", skip=FAIL_NTH + [RACE]), variant="server")
    assert not v.passed
    assert any(r.startswith(f"kexec_stress_test.{RACE} skipped on uefi, which must run")
               for r in v.reasons)
    v = judge(guest(skip=FAIL_NTH + [RACE]), profile="dt-el2", variant="server")
    assert f"kexec_stress_test.{RACE}" in v.evidence["summary"]["skipped"]


def test_an_allocation_failure_report_is_excused_a_bare_call_trace_is_not():
    lines = guest(efi="yes")
    at = lines.index("KX-TAP-BEGIN") + 1
    report = ["[   12.0] kexec_stress_te: vmalloc: allocation failure: 65536 bytes, "
              "mode:0xcc0(GFP_KERNEL), nodemask=(null)",
              "[   12.0] CPU: 0 PID: 90 Comm: kexec_stress_te Not tainted 5.10.223-kx #1",
              "[   12.0] Call trace:", "[   12.0]  dump_backtrace+0x0/0x1c0"]
    v = judge(lines[:at] + report + lines[at:])
    assert v.passed, v.reasons
    v = judge(lines[:at] + report + report[2:] + lines[at:])
    assert not v.passed
    assert "the console shows '[   12.0] Call trace:'" in v.reasons


def test_the_reboot_after_the_tests_must_reach_the_next_kernel():
    v = judge(without(guest(efi="yes"), "KX-BOOT scenario=selftests gen=1"))
    assert not v.passed
    assert "gen 0: kexec -e did not reach gen 1's userspace" in v.reasons
    v = judge(swap(guest(efi="yes"), f"token={TOKEN}", "token=0000"))
    assert f"gen 1: token '0000', expected '{TOKEN}'" in v.reasons
    v = judge(without(guest(efi="yes"), "KX-DONE gen=1"))
    assert "gen 1 did not finish" in v.reasons


def test_a_result_from_before_the_reboot_after_the_tests_still_needs_kx_done():
    """Saved results whose judge arguments have no reboot (./kx judge)."""
    c = ctx("uefi")
    old = {k: x for k, x in expect(c).items() if k != "reboot"}
    lines = guest(efi="yes")
    lines = lines[:lines.index("KX-EXEC gen=0")] + ["KX-DONE gen=0"]
    b = Boot(lines=[Line(float(i), t) for i, t in enumerate(lines)], timed_out=False,
             exit_code=0)
    assert selftests.judge(b, c, old).passed
    v = selftests.judge(Boot(lines=b.lines[:-1], timed_out=False, exit_code=0), c, old)
    assert "the guest did not finish (no KX-DONE)" in v.reasons


@pytest.mark.parametrize("version, programs", [
    ("VERSION = 5\nPATCHLEVEL = 10\n", {"kexec_load_test", "kexec_file_load_test",
                                       "kexec_stress_test"}),
    ("VERSION = 6\nPATCHLEVEL = 12\n", {"kexec_load_test", "kexec_file_load_test"}),
    ("VERSION = 6\nPATCHLEVEL = 1\n", {"kexec_load_test", "kexec_file_load_test",
                                      "kexec_stress_test"})])
def test_each_series_is_held_to_the_selftests_of_its_own_kernel_line(tmp_path, version,
                                                                       programs):
    """The v6.12 series promises no stress test (yet), and one case of its
    own: a normal image refused the crash kernel region. Any other line is
    held to v5.10's programs, all of them, with every case."""
    (tmp_path / "Makefile").write_text("# SPDX\n" + version + "SUBLEVEL = 1\n")
    got = selftests.programs_for(tmp_path)
    assert set(got) == programs
    extra = {"kexec_load_test": ("normal_segment_in_crash_region",)} if "12" in version else {}
    assert all(got[p] == (*selftests.PROGRAMS[p], *extra.get(p, ())) for p in got)


def test_a_tree_without_a_kernel_version_is_an_error(tmp_path):
    (tmp_path / "Makefile").write_text("all:\n")
    with pytest.raises(util.KxError, match="names no VERSION"):
        kbuild.kernel_line(tmp_path)


def test_a_run_asked_for_more_lists_must_fuzz_them_all():
    v = judge(guest(efi="yes"), fuzz_lists=selftests.DEBUG_FUZZ_LISTS)
    assert any("fuzzed 3000 lists" in r and "at least 10000" in r for r in v.reasons)
    v = judge(swap(guest(efi="yes"), "3000 lists", "10000 lists"),
              fuzz_lists=selftests.DEBUG_FUZZ_LISTS)
    assert v.passed, v.reasons


GOLDEN = Path(__file__).resolve().parent / "fixtures" / "logs"


def rejudged_with(tmp_path, stem, old, new):
    """The verdict on the saved log STEM with OLD replaced by NEW."""
    text = (GOLDEN / f"{stem}.log").read_text()
    assert old in text
    log = tmp_path / f"{stem}.log"
    log.write_text(text.replace(old, new))
    log.with_suffix(".json").write_text((GOLDEN / f"{stem}.json").read_text())
    return runner.rejudge(log)[0]


@pytest.mark.parametrize("stem, old, new, needle", [
    ("selftests-server-offline-race-pass", "KX-SELFTESTS-DIMM", "XX-SELFTESTS-DIMM",
     "the guest saw no DIMM's memory blocks appear"),
    ("selftests-server-offline-race-pass", "online_movable=1", "online_movable=0",
     "the DIMM's 1 blocks: 0 online movable, 1 wanted"),
    ("selftests-server-dimm-offline-pass", "online_movable=0", "online_movable=1",
     "the DIMM's 1 blocks: 1 online movable, 0 wanted"),
    ("selftests-server-dimm-offline-pass", "blocks=1 online", "blocks=0 online",
     "the DIMM's 0 blocks: 0 online movable"),
])
def test_selftests_with_a_dimm_want_it_there_as_the_cell_asks(tmp_path, stem, old, new,
                                                              needle):
    """Real server runs: the race needs the DIMM online movable, the offline
    cell needs it offline; a DIMM missing or in the other state fails."""
    assert runner.rejudge(GOLDEN / f"{stem}.log")[0].passed
    v = rejudged_with(tmp_path, stem, old, new)
    assert not v.passed
    assert any(needle in r for r in v.reasons), v.reasons
