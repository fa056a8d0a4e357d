"""Every `require` of the gdbstub judges (mmu-state, reloc-fault, ptwalk),
memory-hotplug and selftests must be able to fail on its own.

Each parametrized case starts from inputs the judge passes, breaks the one
thing a require checks, and wants the verdict failed with that require's
own reason. A require used as a condition (`if v.require(...)`) guards code
that would raise on the bad input if the guard were gone; a judge that
raises fails the test, so the mutant that replaces the call by True dies
too (python3 -m kxbench.mutants checks that none survives).
"""
import dataclasses

import pytest

from kxbench import kbuild, util
from kxbench.armpt import Run
from kxbench.scenarios import (features, memory_hotplug, mmu_state, ptwalk, reloc_fault,
                               selftests)
from test_ptwalk import GOOD_COPY, HOLE, IDMAP, LIVE, RAM, SAMPLE, copy_of
from test_ptwalk import lines as ptwalk_lines
from test_ptwalk import walk
from test_selftests import expect as selftests_expect
from test_selftests import guest as selftests_guest
from test_server import with_features
from test_verdicts import (CLEANS, OFF, ON, TLBI, VBAR_EL2, boot, ctx, memhp_lines, parked,
                           reboot_expect, reboot_lines, st)


def fails_with(v, needle):
    assert not v.passed, f"passed although it should fail with {needle!r}"
    assert any(needle in r for r in v.reasons), (needle, v.reasons)


def the_line(lines, start):
    """The index of the one line of LINES that starts with START."""
    hits = [i for i, t in enumerate(lines) if t.startswith(start)]
    assert len(hits) == 1, f"{len(hits)} lines start with {start!r}"
    return hits[0]


def drop(lines, start):
    """LINES without the one line that starts with START."""
    i = the_line(lines, start)
    return lines[:i] + lines[i + 1:]


def edit(lines, start, old, new):
    """LINES with OLD replaced by NEW in the one line that starts with START."""
    i = the_line(lines, start)
    assert old in lines[i], (old, lines[i])
    return lines[:i] + [lines[i].replace(old, new)] + lines[i + 1:]


def insert_after(lines, start, *new):
    i = the_line(lines, start) + 1
    return lines[:i] + list(new) + lines[i:]


def mutations(*cases):
    """pytest params (mutation, needle) named by their ids."""
    return pytest.mark.parametrize("mutate, needle", [
        pytest.param(mutate, needle, id=name) for name, mutate, needle in cases])


# mmu-state ------------------------------------------------------------------

MMU_OFF = 248                                   # the routine's MMU-off write ends here
COPY = {**st(1, ON | OFF), "offset": 132}       # EL1, M, C and I set
FIRST = {**COPY, "vbar_el2": VBAR_EL2}          # the first also read VBAR_EL2
TAIL = {**st(1, OFF), "offset": 260}            # past the MMU-off write: M clear


def mmu_inputs():
    return {"samples": [FIRST] + [COPY] * 2 + [TAIL], "jump": st(1, OFF), "mmu_off": MMU_OFF,
            "tlbis": TLBI, "cleans": CLEANS}


def mmu_judge(i):
    return mmu_state.judge(boot(*reboot_lines()), ctx("mmu-state"), reboot_expect(),
                           i["samples"], i["jump"], i["mmu_off"], i["tlbis"], i["cleans"])


def test_mmu_state_baseline_passes():
    v = mmu_judge(mmu_inputs())
    assert v.passed, v.reasons
    assert v.metrics["copy_samples"] == 3 and len(v.evidence["tail_samples"]) == 1


@mutations(
    ("two-copy-samples", lambda i: {**i, "samples": [COPY] * 2 + [TAIL]},
     "2 samples stopped inside the relocation routine's copy, fewer than 3"),
    ("copy-sample-at-el2", lambda i: {**i, "samples": [COPY] * 2 + [{**COPY, "el": 2}, TAIL]},
     "1 of 3 copy samples lacked EL1 with M, C and I set; first: EL2"),
    ("copy-sample-dcache-off",
     lambda i: {**i, "samples": [COPY] * 2 + [{**COPY, "sctlr": ON & ~mmu_state.SCTLR_C}, TAIL]},
     "1 of 3 copy samples lacked EL1 with M, C and I set"),
    ("tail-sample-mmu-on",
     lambda i: {**i, "samples": [COPY] * 3 + [{**TAIL, "sctlr": OFF | mmu_state.SCTLR_M}]},
     "1 of 1 samples after the MMU-off write still had the MMU on"),
    ("no-jump", lambda i: {**i, "jump": None}, "the final jump was not caught"),
    ("mmu-on-at-jump", lambda i: {**i, "jump": st(1, OFF | mmu_state.SCTLR_M)},
     "MMU still on at the jump"),
    ("sctlr-not-reset-at-jump", lambda i: {**i, "jump": st(1, OFF | 1 << 31)},   # EnIA
     "expected the reset value"),
    ("no-clean-at-kexec-e", lambda i: {**i, "cleans": CLEANS[1:]},
     "was not cleaned to the PoC between kexec -e and the copy"),
    ("el2-vectors-not-cleaned", lambda i: {**i, "cleans": CLEANS[:1]},
     "the EL2 vectors at VBAR_EL2 0x47ff0000 were not cleaned"),
    ("vbar-el2-not-read", lambda i: {**i, "samples": [COPY] * 3 + [TAIL]},
     "VBAR_EL2 was not read during the copy"),
    ("no-tlbi", lambda i: {**i, "tlbis": []}, "the routine invalidates no TLB entry"),
    ("tlbi-without-repeat", lambda i: {**i, "tlbis": [{**TLBI[0], "repeat_tlbi": False}]},
     "a TLBI of the routine lacks the ARM64_WORKAROUND_REPEAT_TLBI alternative"),
)
def test_mmu_state_fails_on_each_broken_requirement(mutate, needle):
    assert mmu_judge(mmu_inputs()).passed
    fails_with(mmu_judge(mutate(mmu_inputs())), needle)


# Under VHE (the server variant on cpu max, at EL2) the copy runs at EL2 with
# HCR_EL2.E2H set, as measured: SCTLR_EL2=0x18fc74791d while copying, and
# SCTLR_EL2=0x30500800 (the routine's write to SCTLR_EL1, redirected) at the jump.
VHE_COPY = {**COPY, "el": 2, "sctlr": 0x18fc74791d, "e2h": 1}
VHE_JUMP = {**st(2, OFF), "e2h": 1}


def vhe_judge(samples, jump=VHE_JUMP, **ctx_kw):
    c = ctx("mmu-state", **{"cpu": "max", "variant": "server", **ctx_kw})
    return mmu_state.judge(boot(*with_features(reboot_lines())), c, reboot_expect(), samples,
                           jump, MMU_OFF, TLBI, CLEANS)


def test_mmu_state_under_vhe_wants_the_copy_at_el2_with_e2h():
    v = vhe_judge([VHE_COPY] * 3)
    assert v.passed, v.reasons
    assert v.evidence["copy_at"] == "EL2 under E2H"
    fails_with(vhe_judge([VHE_COPY] * 2 + [COPY]),
               "1 of 3 copy samples lacked EL2 under E2H with M, C and I set; first: EL1")
    fails_with(vhe_judge([VHE_COPY] * 2 + [{**VHE_COPY, "e2h": 0}]),
               "1 of 3 copy samples lacked EL2 under E2H")
    # Without VHE (EL1 profile, or another CPU) the copy belongs at EL1.
    fails_with(vhe_judge([VHE_COPY] * 3, profile="dt-el1"),
               "3 of 3 copy samples lacked EL1 with M, C and I set")


def test_vhe_is_expected_where_the_kernel_takes_it():
    """Every line after v5.10 runs at EL2 under VHE wherever the CPU and the
    profile offer it; v5.10 only when built with ARM64_VHE (server)."""
    for kernel in ("series-6.12", "base-6.12", "upstream"):
        assert features.runs_vhe(ctx("mmu-state", config="16k-47", kernel=kernel))
        assert features.runs_vhe(ctx("mmu-state", kernel=kernel, cpu="max", profile="uefi"))
        assert not features.runs_vhe(ctx("mmu-state", kernel=kernel))     # cortex-a57
        assert not features.runs_vhe(ctx("mmu-state", config="16k-47", kernel=kernel,
                                         profile="dt-el1"))
    assert not features.runs_vhe(ctx("mmu-state", config="16k-47"))
    assert features.runs_vhe(ctx("mmu-state", cpu="max", variant="server"))
    assert features.expected(ctx("kdump", config="16k-47", kernel="series-6.12")) == \
        {"vhe": "yes"}


def test_mmu_state_of_a_v612_kernel_on_a_vhe_cpu_wants_the_copy_at_el2():
    v = vhe_judge([VHE_COPY] * 3, kernel="series-6.12", variant="")
    assert v.passed, v.reasons
    fails_with(vhe_judge([COPY] * 3, kernel="series-6.12", variant=""),
               "3 of 3 copy samples lacked EL2 under E2H with M, C and I set; first: EL1")


# reloc-fault ----------------------------------------------------------------

def reloc_inputs():
    # gen 0 booted, loaded, reported its log, kexec -e; then the park
    return {"lines": reboot_lines()[:5], "park": parked()}


def reloc_judge(i):
    return reloc_fault.judge(boot(*i["lines"]), ctx("reloc-fault"), i["park"])


def test_reloc_fault_baseline_passes():
    v = reloc_judge(reloc_inputs())
    assert v.passed, v.reasons
    assert v.evidence["park"]["vbar_el1"] == hex(parked()["routine"] + reloc_fault.PARK_OFFSET)


ROUTINE = parked()["routine"]


@mutations(
    ("no-kexec-e", lambda i: {**i, "lines": drop(i["lines"], "KX-EXEC")},
     "gen 0 never reached kexec -e"),
    ("no-park", lambda i: {**i, "park": None},
     "no sample stopped inside the relocation routine"),
    # VBAR_EL1 elsewhere, the PC still in the vectors it points at
    ("vbar-not-the-routines",
     lambda i: {**i, "park": parked(vbar_el1=ROUTINE + 0x1000, pc=ROUTINE + 0x1200)},
     f"VBAR_EL1 {ROUTINE + 0x1000:#x} is not the routine's vectors"),
    ("pc-outside-the-vectors", lambda i: {**i, "park": parked(pc=ROUTINE + 0x7c)},
     f"PC {ROUTINE + 0x7c:#x} is not in the vectors at VBAR_EL1"),
    ("instruction-abort", lambda i: {**i, "park": parked(esr_el1=0x86000006)},
     "expected a data abort at EL1"),
    ("far-not-injected", lambda i: {**i, "park": parked(far_el1=0)},
     "FAR_EL1 0x0, expected the injected"),
    ("elr-not-the-load", lambda i: {**i, "park": parked(elr_el1=0)},
     "ELR_EL1 0x0, expected the load"),
    ("parked-at-el2", lambda i: {**i, "park": parked(cpsr=0x3c9)},
     "parked at EL2, expected EL1"),
)
def test_reloc_fault_fails_on_each_broken_requirement(mutate, needle):
    assert reloc_judge(reloc_inputs()).passed
    fails_with(reloc_judge(mutate(reloc_inputs())), needle)


def test_reloc_fault_under_vhe_parks_at_el2_in_its_registers():
    """A v6.12 kernel on cpu max copies at EL2 with E2H: the fault is taken
    there, to the routine's vectors that VBAR_EL2 then holds."""
    c = ctx("reloc-fault", config="16k-47", kernel="series-6.12")
    lines = reloc_inputs()["lines"]
    v = reloc_fault.judge(boot(*lines), c, parked(cpsr=0x3c9))
    assert v.passed, v.reasons
    fails_with(reloc_fault.judge(boot(*lines), c, parked()), "parked at EL1, expected EL2")
    fails_with(reloc_fault.judge(boot(*lines), c, parked(cpsr=0x3c9, vbar_el1=ROUTINE)),
               f"VBAR_EL2 {ROUTINE:#x} is not the routine's vectors")


# ptwalk ---------------------------------------------------------------------

def ptwalk_inputs():
    """Fresh inputs (walks are mutable) of a 4k-48 DT run that passes."""
    return {"lines": ptwalk_lines(GOOD_COPY), "expect": {**reboot_expect(),
                                                         "nomap_added": [HOLE]},
            "live": dict(LIVE), "sample": dict(SAMPLE),
            "walks": {"ttbr1": walk("ttbr1", copy_of(GOOD_COPY)), "ttbr0": walk("ttbr0", IDMAP)}}


def ptwalk_judge(i):
    return ptwalk.judge(boot(*i["lines"]), ctx("ptwalk"), i["expect"], i["live"], i["sample"],
                        i["walks"])


def with_walk(i, which, **changes):
    return {**i, "walks": {**i["walks"],
                           which: dataclasses.replace(i["walks"][which], **changes)}}


def ttbr1_runs(i, runs):
    return with_walk(i, "ttbr1", runs=runs)


def ttbr0_runs(i, runs):
    return with_walk(i, "ttbr0", runs=runs)


def skewed(runs):
    """RUNS with the last one moved a page up in VA, its PA unchanged."""
    return runs[:-1] + [dataclasses.replace(runs[-1], va=runs[-1].va + 0x1000)]


def executable_first(runs):
    return [dataclasses.replace(runs[0], executable=True)] + runs[1:]


def test_ptwalk_baseline_passes():
    v = ptwalk_judge(ptwalk_inputs())
    assert v.passed, v.reasons
    assert v.metrics["table_pages_total"] == 8 and v.evidence["first_offence"] is None


@mutations(
    ("no-linear-map-dump", lambda i: {**i, "lines": ptwalk_lines([])},
     "the guest printed no mapped linear map (kernel_page_tables)"),
    ("no-iomem", lambda i: {**i, "lines": [t for t in i["lines"]
                                          if not t.startswith("KX-IOMEM ")]},
     "the guest printed no /proc/iomem"),
    ("hole-not-in-the-device-tree", lambda i: {**i, "lines": drop(i["lines"], "KX-RESMEM ")},
     f"the guest's device tree lacks the no-map region {HOLE[0]:#x}-{HOLE[1]:#x}"),
    ("no-nomap-region", lambda i: {**i, "expect": {**i["expect"], "nomap_added": []}},
     "no nomap region: the holes would go untested"),
    ("no-live-translation", lambda i: {**i, "live": None},
     "the linear map's first address was not translated through the live TTBR1"),
    ("live-translation-failed", lambda i: {**i, "live": {**i["live"], "pa": None}},
     "the linear map's first address was not translated through the live TTBR1"),
    ("live-stop-in-the-relocation", lambda i: {**i, "live": {**i["live"], "in_routine": True}},
     "the live translation stopped in the relocation"),
    ("no-sample", lambda i: {**i, "sample": None},
     "no sample stopped inside the relocation routine past its TTBR1 switch"),
    ("sample-mmu-off", lambda i: {**i, "sample": {**i["sample"], "sctlr": OFF}},
     "the relocation ran without the MMU at EL1"),
    ("sample-at-el2", lambda i: {**i, "sample": {**i["sample"], "el": 2}},
     "the relocation ran without the MMU at EL1"),
    ("ttbr1-is-the-live-one",
     lambda i: {**i, "sample": {**i["sample"], "ttbr1": i["live"]["ttbr1"]}},
     "TTBR1 in the relocation is the live kernel's, not a copy"),
    ("walk-error",
     lambda i: with_walk(i, "ttbr0", errors=["cannot read the level 3 table at PA 0x1000"]),
     "TTBR0 walk: cannot read the level 3 table at PA 0x1000"),
    ("walk-truncated", lambda i: with_walk(i, "ttbr1", truncated=True),
     "TTBR1 walk stopped after 4 tables"),
    ("too-many-table-pages",            # 28 + 4 pages: 4k-48 must take fewer than 32
     lambda i: with_walk(i, "ttbr1", tables=i["walks"]["ttbr1"].tables * 7),
     "the relocation tables take 32 pages, not fewer than 32"),
)
def test_ptwalk_fails_on_each_broken_requirement(mutate, needle):
    assert ptwalk_judge(ptwalk_inputs()).passed
    fails_with(ptwalk_judge(mutate(ptwalk_inputs())), needle)


# check_tables' rules: each goes through one `rule` (a require whose failure
# is also kept as an offence, the verdict's first bad line).
@mutations(
    ("copy-maps-an-extra-page",
     lambda i: ttbr1_runs(i, copy_of(GOOD_COPY + [(RAM[1], RAM[1] + 0x1000)])),
     "the TTBR1 copy maps 4096 bytes the linear map less nomap pages does not; "
     "first 0x80000000-0x80001000"),
    ("copy-lacks-a-page",
     lambda i: ttbr1_runs(i, copy_of([(RAM[0], 0x40001000), (0x40002000, HOLE[0]),
                                      (HOLE[1], RAM[1])])),
     "the TTBR1 copy lacks 4096 bytes of the linear map less nomap pages; "
     "first 0x40001000-0x40002000"),
    ("ttbr1-maps-the-hole", lambda i: ttbr1_runs(i, copy_of([RAM])),
     f"TTBR1 maps nomap bytes, first {HOLE[0]:#x}-{HOLE[1]:#x}"),
    ("ttbr0-maps-the-hole",
     lambda i: ttbr0_runs(i, IDMAP + [Run(HOLE[0], HOLE[0], 4096, 3, 3, False, False, False)]),
     f"TTBR0 maps nomap bytes, first {HOLE[0]:#x}-{HOLE[1]:#x}"),
    ("ttbr1-leaf-at-another-offset", lambda i: ttbr1_runs(i, skewed(copy_of(GOOD_COPY))),
     "1 TTBR1 runs do not map PA = VA - "),
    ("ttbr1-writable-and-executable",
     lambda i: ttbr1_runs(i, executable_first(copy_of(GOOD_COPY))),
     f"TTBR1 maps {(HOLE[0] - RAM[0]) // 4096} leaves writable and executable at EL1"),
    ("ttbr0-writable-and-executable",
     lambda i: ttbr0_runs(i, [dataclasses.replace(IDMAP[0], writable=True)]),
     "TTBR0 maps 1 leaves writable and executable at EL1"),
    ("pc-not-identity-mapped",
     lambda i: ttbr0_runs(i, [dataclasses.replace(IDMAP[0], va=IDMAP[0].va + 0x1000)]),
     f"TTBR0 does not map the page of the sampled PC {SAMPLE['pc']:#x} at its own address"),
)
def test_ptwalk_fails_on_each_broken_table_rule(mutate, needle):
    assert ptwalk_judge(ptwalk_inputs()).passed
    v = ptwalk_judge(mutate(ptwalk_inputs()))
    fails_with(v, needle)
    # The first offence is what the verdict names as its first bad line.
    assert v.evidence["first_offence"] in v.reasons
    assert v.first_bad_line == v.evidence["first_offence"]

def test_ptwalk_under_vhe_wants_the_copy_at_el2_with_e2h():
    """A v6.12 kernel on cpu max copies at EL2 with E2H, through the copy
    that TTBR1_EL2 then holds (read in place of TTBR1_EL1)."""
    i = ptwalk_inputs()
    c = ctx("ptwalk", kernel="series-6.12", cpu="max")
    lines = with_features(i["lines"], kvm="none", pac="no")

    def judge(sample):
        return ptwalk.judge(boot(*lines), c, i["expect"], i["live"], sample, i["walks"])
    v = judge({**i["sample"], "el": 2, "e2h": 1})
    assert v.passed, v.reasons
    fails_with(judge(i["sample"]), "the relocation ran without the MMU at EL2 under E2H: EL1")
    fails_with(judge({**i["sample"], "el": 2}), "the relocation ran without the MMU at EL2 "
                                                "under E2H: EL2")
    assert mmu_state.translation_regs({"el": 2, "e2h": 1})["ttbr1"] == "TTBR1_EL2"
    assert mmu_state.translation_regs({"el": 2})["ttbr1"] == "TTBR1_EL1"
    assert mmu_state.translation_regs({"el": 1})["tcr"] == "TCR_EL1"


# memory-hotplug -------------------------------------------------------------

MEMHP_OK = {"loaded": False, "unloaded": True}


def memhp_inputs():
    return {"lines": memhp_lines(), "deleted": dict(MEMHP_OK)}


def memhp_judge(i):
    return memory_hotplug.judge(boot(*i["lines"]), ctx("memory-hotplug", profile="uefi"),
                                reboot_expect(), i["deleted"])


def test_memory_hotplug_baseline_passes():
    v = memhp_judge(memhp_inputs())
    assert v.passed, v.reasons
    assert v.evidence["memhp"]["blocks"] == 1


def lines_edit(start, old, new):
    return lambda i: {**i, "lines": edit(i["lines"], start, old, new)}


def lines_drop(start):
    return lambda i: {**i, "lines": drop(i["lines"], start)}


@mutations(
    ("dimm-never-appeared", lines_drop("KX-MEMHP-ADDED"),
     "the DIMM's memory blocks never appeared"),
    ("no-file-load-beside-offline-dimm", lines_drop("KX-MEMHP-FILE-OFFLINE"),
     "no kexec_file_load() while the DIMM was offline"),
    ("file-load-with-dimm-online", lines_edit("KX-MEMHP-FILE-OFFLINE", "offline=1", "offline=0"),
     "the file load beside offline memory proves nothing: 0 of 1 blocks offline"),
    ("file-load-into-offline-dimm",
     lines_edit("KX-MEMHP-FILE-OFFLINE", "rc=0 loaded=1 error=none",
                "rc=255 loaded=0 error=Cannot_assign_requested_address"),
     "kexec_file_load() failed with Cannot_assign_requested_address while the DIMM was"),
    ("dimm-block-not-online", lines_edit("KX-MEMHP-ADDED", "online=1", "online=0"),
     "0 of 1 DIMM blocks went online"),
    ("no-load-in-round-2", lines_drop("KX-MEMHP-LOADED i=2 "),
     "round 2: no load into the DIMM"),
    ("load-failed", lines_edit("KX-MEMHP-LOADED i=0 ", "rc=0", "rc=1"),
     "round 0: load rc=1 loaded=1 in_dimm=yes"),
    ("load-outside-the-dimm", lines_edit("KX-MEMHP-LOADED i=3 ", "in_dimm=yes", "in_dimm=no"),
     "round 3: load rc=0 loaded=1 in_dimm=no"),
    ("no-offline-attempt-while-loaded", lines_drop("KX-MEMHP-OFFLINE-LOADED"),
     "no offline attempt with the image loaded"),
    ("offlined-while-loaded", lines_edit("KX-MEMHP-OFFLINE-LOADED", "offlined=0", "offlined=1"),
     "1 of 1 blocks went offline with an image loaded"),
    ("no-refusal-in-the-log", lines_edit("KX-MEMHP-OFFLINE-LOADED", "refusals=2", "refusals=0"),
     "the kernel log does not say why offlining failed"),
    ("removed-while-loaded", lambda i: {**i, "deleted": {**i["deleted"], "loaded": True}},
     "QEMU removed the DIMM while an image was loaded"),
    ("removal-while-loaded-not-tried", lambda i: {**i, "deleted": {"unloaded": True}},
     "the removal with an image loaded was not tried"),
    ("blocks-lost-after-refused-removal",
     lines_edit("KX-MEMHP-AFTER-EJECT", "present=1", "present=0"),
     "after the refused removal: "),
    ("round-2-unfinished", lines_drop("KX-MEMHP-LOOP i=2 "), "round 2 did not finish"),
    ("round-2-offline-failed-unloaded",
     lines_edit("KX-MEMHP-LOOP i=2 ", "offlined_unloaded=1", "offlined_unloaded=0"),
     "round 2: without an image 0 blocks went offline"),
    ("round-1-offlined-while-loaded",
     lines_edit("KX-MEMHP-LOOP i=1 ", "offlined_loaded=0", "offlined_loaded=1"),
     "round 1: 1 blocks went offline while loaded"),
    ("still-loaded-after-unload", lines_edit("KX-MEMHP-UNLOADED", "loaded=0", "loaded=1"),
     "after the last unload: "),
    ("not-removed-after-unload", lambda i: {**i, "deleted": {**i["deleted"], "unloaded": False}},
     "QEMU did not remove the DIMM after kexec -u"),
    ("blocks-stayed-after-removal", lines_edit("KX-MEMHP-REMOVED", "gone=yes", "gone=no"),
     "the DIMM's blocks stayed after removal"),
)
def test_memory_hotplug_fails_on_each_broken_requirement(mutate, needle):
    assert memhp_judge(memhp_inputs()).passed
    fails_with(memhp_judge(mutate(memhp_inputs())), needle)


# selftests ------------------------------------------------------------------

def selftests_inputs(**guest):
    """Under uefi, where every C case must run; the scripts skip (no IKCONFIG
    or IMA on any workbench config), as they are allowed to."""
    return {"lines": selftests_guest(efi="yes", **{"script": "skip", **guest}),
            "expect": selftests_expect(selftests_ctx())}


STRESS_LOG = "# # kexec_stress_test.c:100:"     # how test_selftests.program() logs


def selftests_ctx():
    """The debug build variant, whose fault injection the fail-nth cases need."""
    return ctx("selftests", profile="uefi", variant="debug")


def selftests_judge(i):
    return selftests.judge(boot(*i["lines"]), selftests_ctx(), i["expect"])


def test_selftests_baseline_passes():
    v = selftests_judge(selftests_inputs())
    assert v.passed, v.reasons
    assert len(v.evidence["summary"]["passed"]) == 19
    assert set(v.evidence["summary"]["skipped"]) == set(selftests.SCRIPTS)


def guest_with(**kw):
    return lambda i: selftests_inputs(**kw)


def silent_skip(i):
    """test_kexec_load.sh skips without saying why."""
    lines = i["lines"]
    at = lines.index("# selftests: kexec: test_kexec_load.sh") + 1
    assert lines[at] == "# extract-ikconfig not found"
    return {**i, "lines": lines[:at] + lines[at + 1:]}


def script_must_run(i):
    return {**i, "expect": {**i["expect"], "may_skip": i["expect"]["may_skip"]
                            - {("test_kexec_load.sh", None)}}}


@mutations(
    ("program-unfinished", lines_drop("ok 1 selftests: kexec: kexec_load_test"),
     "kexec_load_test did not finish: no TAP result line (output truncated)"),
    ("program-not-ok",
     lines_edit("ok 2 selftests: kexec: kexec_file_load_test", "ok 2", "not ok 2"),
     "kexec_file_load_test: not ok (no reason given)"),
    ("script-skip-not-allowed", script_must_run,
     "test_kexec_load.sh skipped on uefi: extract-ikconfig not found"),
    ("script-skip-without-reason", silent_skip, "test_kexec_load.sh skipped without saying why"),
    ("plan-mismatch", lines_edit("# 1..11", "1..11", "1..12"),
     "kexec_load_test: planned 12 cases, reported 11"),
    ("unexpected-case-not-ok", lambda i: {**i, "lines": insert_after(
        edit(i["lines"], "# 1..11", "1..11", "1..12"),
        "# ok 11 global.load_unload_does_not_leak", "# not ok 12 global.surprise")},
     "kexec_load_test.surprise: not ok"),
    ("case-missing", guest_with(drop=["entry_outside_segments"]),
     "kexec_load_test.entry_outside_segments: no result in the TAP"),
    ("case-skip-not-allowed", guest_with(skip=["crash_segment_outside_crashkernel"]),
     "kexec_load_test.crash_segment_outside_crashkernel skipped on uefi, which must run it"),
    ("case-not-ok", lines_edit("# ok 7 global.null_buffer", "ok 7", "not ok 7"),
     "kexec_load_test.null_buffer: not ok"),
    ("no-tap", lines_drop("KX-TAP-BEGIN"), "no KX-TAP-BEGIN: the guest ran no selftests"),
    ("tap-truncated", lines_drop("KX-TAP-END"),
     "the TAP is truncated: no KX-TAP-END after 'KX-DONE gen=1'"),
    ("tap-plan-mismatch", lines_edit("1..5", "1..5", "1..6"),
     "the TAP plans 6 programs, expected 5"),
    ("script-did-not-run", lines_drop("# selftests: kexec: test_kexec_file_load.sh"),
     "test_kexec_file_load.sh did not run: it is not in the TAP"),
    ("kernel-warning-on-the-console", lambda i: {**i, "lines": insert_after(
        i["lines"], "KX-TAP-BEGIN", "[   12.000000] WARNING: CPU: 0 PID: 1 at mm/x.c:1")},
     "the console shows '[   12.000000] WARNING: CPU: 0 PID: 1"),
    ("no-kx-done", lines_drop("KX-DONE"), "gen 1 did not finish"),
    ("fail-nth-silent", lines_drop(STRESS_LOG + "load_fails_cleanly_at_each_allocation:"),
     "kexec_stress_test.load_fails_cleanly_at_each_allocation: ok, but no injection point"),
    ("fuzz-silent", lines_drop(STRESS_LOG + "fuzzed_segment_lists_match_the_model:"), "kexec_stress_test: the fuzzer printed no summary"),
    ("concurrency-silent", lines_drop(STRESS_LOG + "concurrent_loads_and_unloads:"),
     "kexec_stress_test: the concurrency case printed no summary"),
    ("offline-race-silent", lines_drop(STRESS_LOG + "load_races_memory_offline:"),
     "kexec_stress_test: the race with memory offline printed no summary"),
    ("offline-race-one-sided",
     lines_edit(STRESS_LOG + "load_races_memory_offline:", " 14 offlines", " 0 offlines"),
     "kexec_stress_test: the race with memory offline was not run both ways"),
    ("no-reboot-after-the-tests", lines_drop("KX-EXEC"),
     "gen 0: kexec -e did not reach gen 1's userspace"),
)
def test_selftests_fails_on_each_broken_requirement(mutate, needle):
    assert selftests_judge(selftests_inputs()).passed
    fails_with(selftests_judge(mutate(selftests_inputs())), needle)


def test_selftests_case_not_ok_is_the_first_bad_line():
    v = selftests_judge(lines_edit("# ok 7 global.null_buffer", "ok 7", "not ok 7")(
        selftests_inputs()))
    assert v.first_bad_line == "# not ok 7 global.null_buffer"


# selftests.run without the kexec selftests: the verdict says why, before
# any guest boots. build_tests' three ways, faked (no make, no QEMU).
def no_sources(src):
    (src / "Makefile").write_text("VERSION = 5\nPATCHLEVEL = 10\n")


def sources(src):
    no_sources(src)
    (src / selftests.SELFTESTS).mkdir(parents=True)
    for p in selftests.PROGRAMS:
        (src / selftests.SELFTESTS / f"{p}.c").write_text("")


def make_fails(*args, **kw):
    raise util.KxError("make: *** [all] Error 2")


def make_builds_nothing(*args, **kw):
    pass


@pytest.mark.parametrize("tree, make, needle", [
    pytest.param(no_sources, make_builds_nothing, "the kernel under test lacks the kexec "
                 "selftests", id="no-selftests-in-the-tree"),
    pytest.param(sources, make_fails, "building the kexec selftests failed: make: *** [all]",
                 id="make-fails"),
    pytest.param(sources, make_builds_nothing, "built no kexec_load_test, kexec_file_load_test",
                 id="make-builds-nothing"),
])
def test_selftests_run_fails_without_the_programs(tmp_path, monkeypatch, tree, make, needle):
    src = tmp_path / "linux"
    src.mkdir()
    tree(src)
    monkeypatch.setattr(kbuild, "source_dir", lambda kernel, tree_dir=None: src)
    monkeypatch.setattr(util, "run", make)
    c = ctx("selftests", profile="uefi")
    c.workdir = tmp_path / "run"
    v = selftests.run(c)
    fails_with(v, needle)
    assert v.reasons == [v.reasons[0]] and v.first_bad_line == "(the guest was not booted)"
    assert v.evidence["tree"] == str(src)


@pytest.mark.parametrize("header, place", [
    ("arch/arm64/include/asm/cpucaps.h", "source"),                 # v5.10
    ("arch/arm64/include/generated/asm/cpucap-defs.h", "build")])  # v6.12
def test_mmu_state_finds_a_cpucap_where_each_kernel_defines_it(tmp_path, header, place):
    """v5.10 numbers its cpucaps in a source header; v6.12 generates them
    into the build directory. A kernel without the cap is an error, never
    a guess."""
    build = tmp_path / ".kx-4k-48"
    path = (tmp_path if place == "source" else build) / header
    path.parent.mkdir(parents=True)
    path.write_text("#define ARM64_WORKAROUND_REPEAT_TLBI\t\t98\n")
    build.mkdir(exist_ok=True)
    (build / "vmlinux").write_text("")
    assert mmu_state.cpucap(build / "vmlinux", "ARM64_WORKAROUND_REPEAT_TLBI") == 98
    with pytest.raises(util.KxError, match="no cpucap ARM64_HAS_NOTHING"):
        mmu_state.cpucap(build / "vmlinux", "ARM64_HAS_NOTHING")
