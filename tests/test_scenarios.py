"""The scenario matrix: each cell boots QEMU through ./kx run and passes only
on the evidence the guest printed (see kxbench/scenarios/)."""
import os
from pathlib import Path

import pytest

from kxbench import matrix
from kxbench.matrix import kx_run

PROFILES = ("dt-el1", "dt-el2", "uefi")
OTHER_CONFIGS = ("4k-39", "16k-47", "64k-48", "64k-52")
Cell = matrix.Cell

# Always run: every scenario on the default config under every profile (the
# 5-generation chain, the slowest, under dt-el2; the sample rotates the rest).
CELLS = [Cell(s, "4k-48", p) for p in PROFILES
         for s in ("kexec-reboot", "kexec-file", "kdump", "hibernate", "mmu-state")]
CELLS += [Cell("kexec-chain", "4k-48", "dt-el2")]
# The new kernel lands on the old one's text and read-only data, on every
# config (the checks below demand the overlap). kexec-tools' default placement
# does that under DT with 4K and 16K pages; a 64K kernel has a 'reserved' gap
# in its image that kexec-tools avoids, which kx.placement=old-kernel hides.
OLD_KERNEL = "kx.placement=old-kernel"
CELLS += [Cell("kexec-reboot", c, "dt-el2", append=OLD_KERNEL) for c in matrix.CONFIGS]
# Hibernate shares trans_pgd: every config under every profile.
CELLS += [Cell("hibernate", c, p) for c in OTHER_CONFIGS for p in PROFILES]
# The unpatched peer through UEFI (the workbench's done-when cell).
CELLS += [Cell("kexec-reboot", "4k-48", "uefi", kernel="base")]
# What the relocation tables map (issue 10).
CELLS += [Cell("ptwalk", "4k-48", "dt-el2")]
# An exception during the copy parks in the routine's own vectors (4K and 64K
# pages, DT at EL2 and UEFI at EL1).
CELLS += [Cell("reloc-fault", "4k-48", "dt-el2"), Cell("reloc-fault", "64k-48", "uefi")]
# No memory goes offline or away while a loaded image's tables map it.
CELLS += [Cell("memory-hotplug", "4k-48", "uefi")]

# The rest of the kexec matrix rotates through make check (kxbench/matrix.py);
# tests/conftest.py picks the seed once per run and prints it in the header.
SEED = int(os.environ.get("KX_MATRIX_SEED") or 0)
SAMPLE = [c for c in matrix.sample(SEED) if c not in CELLS]


def params(cells):
    """A pending cell (matrix.PENDING) must fail for now: strict, so that the
    day it passes the run says so and its entry is deleted."""
    return [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=c.pending))
            if c.pending else c for c in cells]


def check_cell(cell):
    rc, out, record = kx_run(*cell.args())
    assert rc == 0, out
    assert out.startswith("PASS "), out
    assert record["verdict"] == "pass" and not record["reasons"]
    for key in ("scenario", "kernel", "config", "profile", "cpu", "mem", "evidence",
                "metrics"):
        assert key in record
    assert record["smp"] == cell.smp
    assert Path(record["log"]).exists()
    ev, el = record["evidence"], 1 if cell.profile == "dt-el1" else 2
    if cell.scenario.startswith("kexec") or cell.scenario in ("mmu-state", "ptwalk"):
        gens = ev["generations"]
        assert len(gens) == (5 if cell.scenario == "kexec-chain" else 1)
        for g in gens:
            assert g["token"] == ev["expected"]["token"]
            assert g["sha256"] == ev["expected"]["sha256"]
            assert g["el"] == el
            assert g["efi"] == ("yes" if cell.profile == "uefi" else "no")
            if cell.scenario != "kexec-file":
                assert g["placement"]["segments"], g     # kexec -d was read
        if cell.append == OLD_KERNEL:
            assert gens[0]["placement"]["lands_on_old_kernel"], gens[0]["placement"]
        for metric in ("load_s", "memfree_before_load_kb", "memfree_after_load_kb",
                       "exec_to_userspace_s"):
            assert record["metrics"][metric] > 0
    if cell.scenario == "mmu-state":
        assert len(ev["copy_samples"]) >= 3, out
        for s in ev["copy_samples"]:
            assert s["el"] == 1 and (int(s["sctlr"], 16) & 0x1005) == 0x1005, s
        assert (int(ev["jump"]["sctlr"], 16) & 1) == 0
    elif cell.scenario == "ptwalk":
        walks = ev["walks"]
        assert walks["ttbr1"]["table_pages_total"] and walks["ttbr0"]["leaves"], walks
        assert ev["nomap"] and ev["copy_bytes"] > 0, ev
        if cell.config == "4k-48":   # issue 10: blocks, whatever the RAM
            assert record["metrics"]["table_pages_total"] < 32, record["metrics"]
    elif cell.scenario == "kdump":
        assert ev["pattern"]["found"] == str(ev["expected"]["chunks"])
        assert ev["makedumpfile"]["sig"] == "KDUMP"
        assert ev["capture"]["el"] == str(el)
    elif cell.scenario == "hibernate":
        assert ev["held"]["intact"] == str(ev["expected"]["chunks"])
        assert ev["resumed"]["boot_id"] == ev["hibernated"]["boot_id"]


@pytest.mark.parametrize("cell", params(CELLS), ids=str)
def test_cell(cell):
    check_cell(cell)


@pytest.mark.parametrize("cell", params(SAMPLE), ids=lambda c: f"seed{SEED}-{c}")
def test_matrix_sample(cell):
    check_cell(cell)


@pytest.mark.parametrize("config, mem", [("4k-48", 1024), ("4k-48", 8192), ("4k-48", 16384),
                                         ("4k-39", 1024), ("16k-47", 1024), ("64k-48", 16384)])
def test_trans_pgd_kunit_suite_passes_in_the_guest(config, mem):
    """4k-39 also takes the idmap path that must raise T0SZ; 16K and 64K
    pages have other block sizes, and no level-1 blocks. The suite copies
    the real linear map, so it must hold at 8 and 16 GiB too."""
    rc, out, record = kx_run("kunit", "--config", config, "--mem", str(mem))
    assert rc == 0, out
    suite = record["evidence"]["suites"]["arm64_trans_pgd"]
    assert suite["ok"] and len(suite["cases"]) >= 6 and all(suite["cases"].values())


def test_a_failing_cell_exits_nonzero_and_names_its_log():
    """An impossible demand (a guest given too little time) must fail."""
    rc, out, record = kx_run("kexec-reboot", "--timeout", "1")
    assert rc == 1 and out.startswith("FAIL "), out
    assert "timed out" in out and "log " in out
    assert record["verdict"] == "fail" and Path(record["log"]).exists()


@pytest.mark.parametrize("profile, el", [("dt-el2", 2), ("dt-el1", 1)])
def test_mmu_state_sees_the_base_copy_with_the_mmu_off(profile, el):
    """The instrument for the series' central claim, checked where the
    answer is known: the base relocates with the MMU and caches off (at EL2
    when entered at EL2), so mmu-state must fail there, on that evidence,
    while the reboot itself still succeeds."""
    rc, out, record = kx_run("mmu-state", "--kernel", "base", "--profile", profile)
    assert rc == 1 and out.startswith("FAIL "), out
    ev = record["evidence"]
    assert len(ev["copy_samples"]) >= 3, out
    for s in ev["copy_samples"]:
        assert s["el"] == el and (int(s["sctlr"], 16) & 1) == 0, s
    assert (int(ev["jump"]["sctlr"], 16) & 1) == 0
    assert ev["generations"][0]["sha256"] == ev["expected"]["sha256"]


@pytest.mark.parametrize("profile", ["uefi", "dt-el2"])
def test_kexec_selftests_pass_in_the_guest(profile):
    """The kernel's kexec kselftests, their TAP parsed on the host. nomap
    memory (UEFI runtime regions) exists only under uefi: there its case must
    pass; under dt-el2 it may only be skipped, and is listed so."""
    rc, out, record = kx_run("selftests", "--kernel", "series", "--profile", profile)
    assert rc == 0, out
    s = record["evidence"]["summary"]
    assert not s["failed"] and not s["missing"], s
    nomap = "kexec_load_test.segment_in_nomap_region"
    assert nomap in (s["passed"] if profile == "uefi" else s["skipped"]), s
    for case in ("crash_segment_outside_crashkernel", "load_unload_does_not_leak",
                 "no_cap_sys_boot"):
        assert f"kexec_load_test.{case}" in s["passed"], s
    assert "kexec_file_load_test.load_and_unload" in s["passed"], s
    assert record["metrics"]["leak_lost_kb"] <= record["metrics"]["leak_tolerance_kb"]
