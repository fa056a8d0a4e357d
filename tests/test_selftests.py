"""The selftests verdict: it passes only when every expected kselftest case
said ok, and lists allowed skips as skipped, never as passed."""
from kxbench.machine import Boot, Line
from kxbench.scenarios import common, selftests

NOMAP = "kexec_load_test.segment_in_nomap_region"


def ctx(profile):
    return common.Context(scenario="selftests", profile=profile)


def expect(c):
    return {"programs": selftests.PROGRAMS, "scripts": selftests.SCRIPTS,
            "may_skip": selftests.may_skip(c)}


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
        elif case in fail:
            out += [f"# #            FAIL  global.{case}", f"# not ok {i} global.{case}"]
        else:
            out += [f"# #            OK  global.{case}", f"# ok {i} global.{case}"]
    if name == "kexec_load_test":
        out.insert(-1, "# # kexec_load_test.c:535:load_unload_does_not_leak:free before "
                       "939088 kB, after 200 loads 939080 kB (tolerance 64 kB)")
    word = "not ok" if fail else "ok"
    return out + [f"{word} {n} selftests: kexec: {name}" + (" # exit=1" if fail else "")]


def guest(efi="no", skip=(), fail=(), drop=(), script="ok"):
    out = [f"KX-BOOT scenario=selftests gen=0 role=main el=2 efi={efi} acpi=no cpus=1 "
           f"memfree_kb=939000 boot_id=b0 release=5.10.223-kx",
           "KX-TAP-BEGIN", "TAP version 13", "1..4"]
    for n, (name, cases) in enumerate(selftests.PROGRAMS.items(), 1):
        out += program(n, name, cases, skip, fail, drop)
    for n, name in enumerate(selftests.SCRIPTS, 3):
        out.append(f"# selftests: kexec: {name}")
        if script == "skip":
            out += ["# extract-ikconfig not found", f"ok {n} selftests: kexec: {name} # SKIP"]
        elif script == "fail":
            out += ["# kexec_load failed [FAIL]", f"not ok {n} selftests: kexec: {name} # exit=1"]
        else:
            out += ["# kexec_load succeeded [PASS]", f"ok {n} selftests: kexec: {name}"]
    return out + ["KX-TAP-END programs=4",
                  "KX-KLOG gen=0 role=main warnings=0 bugs=0 oopses=0 kasan=0 kmemleak=0",
                  "KX-DONE gen=0"]


def judge(lines, profile="uefi", timed_out=False):
    c = ctx(profile)
    b = Boot(lines=[Line(float(i), t) for i, t in enumerate(lines)], timed_out=timed_out,
             exit_code=None if timed_out else 0)
    return selftests.judge(b, c, expect(c))


def test_passes_when_every_case_said_ok():
    v = judge(guest(efi="yes"))
    assert v.passed, v.reasons
    assert NOMAP in v.evidence["summary"]["passed"]
    assert len(v.evidence["summary"]["passed"]) == 14 and not v.evidence["summary"]["skipped"]
    assert v.metrics["leak_lost_kb"] == 8 and v.metrics["leak_tolerance_kb"] == 64


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
    missing, why = selftests.build_tests(tmp_path, tmp_path / "out")
    assert missing == list(selftests.PROGRAMS)
    assert str(tmp_path / selftests.SELFTESTS) in why
    assert "kexec_load_test.c, kexec_file_load_test.c" in why


def test_a_run_from_a_tree_is_labelled_tree():
    c = common.Context(scenario="selftests", kernel="series", tree="build/linux-st")
    assert c.kernel == "tree" and c.tree.startswith("/")
