"""The scenario matrix: each cell boots QEMU through ./kx run and passes only
on the evidence the guest printed (see kxbench/scenarios/)."""
import os
import re
from pathlib import Path

import pytest

from kxbench import matrix
from kxbench.matrix import kx_run
from kxbench.scenarios import hibernate, kdump, kexec_reboot

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
OLD_KERNEL = kexec_reboot.OLD_KERNEL
CELLS += [Cell("kexec-reboot", c, "dt-el2", append=OLD_KERNEL) for c in matrix.CONFIGS]
# Hibernate shares trans_pgd: every config under dt-el2 (the other profiles
# of each config rotate with the matrix).
CELLS += [Cell("hibernate", c, "dt-el2") for c in OTHER_CONFIGS]
# The unpatched peer through UEFI (the workbench's done-when cell).
CELLS += [Cell("kexec-reboot", "4k-48", "uefi", kernel="base")]
# What the relocation tables map, walked from outside the guest.
CELLS += [Cell("ptwalk", "4k-48", "dt-el2")]
# An exception during the copy parks in the routine's own vectors (4K and 64K
# pages, DT at EL2 and UEFI at EL1).
CELLS += [Cell("reloc-fault", "4k-48", "dt-el2"), Cell("reloc-fault", "64k-48", "uefi")]
# No memory goes offline or away while a loaded image's tables map it.
CELLS += [Cell("memory-hotplug", "4k-48", "uefi")]
# The crash kernel region is unmapped whole while loaded, in 2 MiB units that
# are blocks (4K) or contiguous runs (16K, 64K), and restored exactly; with
# rodata=full in pages.
CELLS += [Cell("crash-protect", "4k-48", "dt-el2"), Cell("crash-protect", "16k-47", "uefi"),
          Cell("crash-protect", "64k-48", "dt-el2"),
          Cell("crash-protect", "4k-48", "uefi", append="rodata=full")]
# crashkernel=,high and ,low: only the high region is protected, the capture
# kernel gets both regions, through kexec_load() and kexec_file_load(); and
# values that cannot be met reserve nothing, with a message.
HIGH_LOW = matrix.HIGH_LOW
CELLS += [Cell("kdump", "4k-48", p, append=HIGH_LOW) for p in ("dt-el2", "uefi")]
CELLS += [Cell("kdump", "64k-48", "dt-el2", append=f"{HIGH_LOW} kx.kexec=file"),
          Cell("crash-protect", "4k-48", "dt-el2", append=HIGH_LOW),
          Cell("bad-crashkernel", "4k-48", "dt-el2")]
# /sys/kernel/kexec_crash_size shrinks the region in whole 2 MiB units.
CELLS += [Cell("crash-shrink", "4k-48", "dt-el2"), Cell("crash-shrink", "64k-48", "uefi")]

# The server build variant: the copy at EL2 under VHE; a KVM guest
# running across kexec -e with KVM owning EL2 (cortex-a57, KPTI forced by
# KASLR, software PAN) and under VHE through UEFI; kdump with kpti=1 and
# pointer authentication; kexec_file_load with debug_pagealloc=on; and a
# 52-bit kernel on a CPU without LVA. The other server cells rotate.
SERVER = {"variant": "server"}
CELLS += [Cell("mmu-state", "4k-48", "dt-el2", cpu="max", **SERVER),
          Cell("kexec-reboot", "4k-48", "dt-el2", append=kexec_reboot.KVM_ALIVE,
               cpu="cortex-a57", **SERVER),
          Cell("kexec-reboot", "4k-48", "uefi", append=kexec_reboot.KVM_ALIVE, cpu="max",
               **SERVER),
          Cell("kdump", "4k-48", "dt-el2", append="kpti=1", cpu="max", **SERVER),
          Cell("kexec-file", "4k-48", "dt-el2", append="debug_pagealloc=on",
               cpu="cortex-a57", **SERVER),
          Cell("kexec-reboot", "64k-52", "dt-el2", cpu="cortex-a57")]

# Paths operators hit: eight CPUs, KASLR off, kdump in a kernel
# that a kexec reboot started, and a kexec reboot after a hibernate resume.
# The 512 MiB payload cells (about 7.5 min each) rotate with the matrix.
CELLS += [Cell("kexec-reboot", "4k-48", "dt-el2", smp=8),
          Cell("kexec-reboot", "4k-48", "uefi", append="nokaslr"),
          Cell("kdump", "4k-48", "dt-el2", append=kdump.KEXEC_FIRST),
          Cell("hibernate", "4k-48", "dt-el2", append=hibernate.THEN_KEXEC)]

# The trans_pgd KUnit suite on the default config at 1, 8 and 16 GiB; on the
# other configs it rotates.
CELLS += [c for c in matrix.kunit_cells() if c.config == "4k-48"]

# The rest of the kexec matrix rotates through make check (kxbench/matrix.py);
# tests/conftest.py picks the seed once per run and prints it in the header.
SEED = int(os.environ.get("KX_MATRIX_SEED") or 0)

# The debug build variant: the kexec selftests under KASAN,
# kmemleak, lockdep and fault injection (every allocation of a load failed in
# turn, fuzzed segment lists, concurrent loads), then a kexec reboot, under DT
# at EL2 (about 10 min), on the seed's debug config: 4K pages on even seeds,
# 64K on odd ones, so that a run builds one KASAN kernel. Its other cells
# rotate.
CELLS += [Cell("selftests", matrix.debug_config(SEED), "dt-el2", variant="debug")]
SAMPLE = [c for c in matrix.sample(SEED) if c not in CELLS]


def params(cells):
    """A pending cell (matrix.PENDING) must fail for now: strict, so that the
    day it passes the run says so and its entry is deleted."""
    return [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=c.pending))
            if c.pending else c for c in cells]


def check_cell(cell):
    """The judge's verdict is the only verdict: PASS, with its evidence kept."""
    rc, out, record = kx_run(*cell.args())
    assert rc == 0, out
    assert out.startswith("PASS "), out
    assert record["status"] == "PASS" and record["verdict"] == "pass", record["reasons"]
    assert not record["reasons"]
    for key in ("scenario", "kernel", "config", "profile", "cpu", "mem", "smp", "append",
                "gens", "evidence", "metrics", "build"):
        assert key in record
    assert (record["smp"], record["append"]) == (cell.smp, cell.append)
    assert record["variant"] == cell.variant
    if cell.cpu:
        assert record["cpu"] == cell.cpu
    if cell.mem:
        assert record["mem"] == cell.mem
    assert Path(record["log"]).exists()


@pytest.mark.parametrize("cell", params(CELLS), ids=str)
def test_cell(cell):
    check_cell(cell)


@pytest.mark.parametrize("cell", params(SAMPLE), ids=lambda c: f"seed{SEED}-{c}")
def test_matrix_sample(cell):
    check_cell(cell)


def test_a_failing_cell_exits_nonzero_and_names_its_log():
    """An impossible demand (a guest given too little time) must fail."""
    rc, out, record = kx_run("kexec-reboot", "--timeout", "1")
    assert rc == 1 and out.startswith("TIMEOUT "), out
    assert "timed out" in out and "log " in out
    assert record["status"] == "TIMEOUT" and Path(record["log"]).exists()


@pytest.mark.parametrize("profile, el", [("dt-el2", 2), ("dt-el1", 1)])
def test_mmu_state_sees_the_base_copy_with_the_mmu_off(profile, el):
    """The instrument for the series' central claim, checked where the
    answer is known: the base relocates with the MMU and caches off (at EL2
    when entered at EL2), so mmu-state must fail there, on that evidence,
    while the reboot itself still succeeds."""
    rc, out, record = kx_run("mmu-state", "--kernel", "base", "--profile", profile)
    assert rc == 1 and record["status"] == "FAIL", out
    copy = re.compile(rf"^(\d+) of \1 copy samples lacked EL1 with M, C and I set; "
                      rf"first: EL{el} SCTLR_EL{el}=0x[0-9a-f]+ M=0 ")
    assert any(copy.match(r) for r in record["reasons"]), record["reasons"]
    # Nothing else may be wrong: the reboot itself succeeded. The base's
    # routine has no TLBI and leaves SCTLR as cpu_soft_restart left it.
    others = [r for r in record["reasons"] if not copy.match(r)
              and r != "the routine invalidates no TLB entry"
              and not r.startswith("SCTLR at the jump ")]
    assert not others, others


@pytest.mark.parametrize("profile", ["uefi", "dt-el2"])
def test_kexec_selftests_pass_in_the_guest(profile):
    """The kernel's kexec kselftests, their TAP parsed on the host. nomap
    memory (UEFI runtime regions) exists only under uefi: there its case must
    pass; under dt-el2 it may only be skipped, and is listed so."""
    rc, out, record = kx_run("selftests", "--kernel", "series", "--profile", profile)
    assert rc == 0 and record["status"] == "PASS", out


@pytest.mark.parametrize("warn", [True, False])
def test_a_kernel_warning_fails_the_reboot_with_the_warning_named(warn):
    """A deliberately warning kernel (LKDTM's WARNING, provoked by kx.warn=1
    in every generation) must fail the reboot judge on that warning; the same
    kernel without it passes, so the warning is what failed it."""
    args = ("kexec-reboot", "--variant", "server") + (("--append", "kx.warn=1") if warn else ())
    rc, out, record = kx_run(*args)
    if not warn:
        assert rc == 0 and record["status"] == "PASS", out
        return
    assert rc == 1 and record["status"] == "FAIL", out
    named = [r for r in record["reasons"] if "warnings=1" in r and "lkdtm_WARNING" in r]
    assert named and all("kernel log" in r for r in record["reasons"]), record["reasons"]


def test_crash_protect_fails_on_the_base_for_its_reasons():
    """The base maps all of memory with pages and unmaps only the segments:
    the judge must say both, and nothing else."""
    rc, out, record = kx_run("crash-protect", "--kernel", "base")
    assert rc == 1 and record["status"] == "FAIL", out
    reasons = record["reasons"]
    assert any("2 MiB units of the crash kernel region are still mapped" in r
               for r in reasons), reasons
    assert any("blocks or 2 MiB runs were not kept" in r for r in reasons), reasons
    assert len(reasons) == 2, reasons


def test_bad_crashkernel_fails_on_the_base_where_it_cannot_say_why():
    """v5.10 knows no crashkernel=,high or ,low on arm64: it boots and
    reserves nothing, silently. The judge must say so for those four cases,
    and for nothing else (crashkernel=64G and =foo get their messages)."""
    rc, out, record = kx_run("bad-crashkernel", "--kernel", "base")
    assert rc == 1 and record["status"] == "FAIL", out
    reasons = record["reasons"]
    assert all("the kernel did not say" in r for r in reasons), reasons
    assert sorted(r.split(" (")[0] for r in reasons) == sorted(
        ["crashkernel=128M,low", "crashkernel=512M,high", "crashkernel=2G,high",
         "crashkernel=512M,high crashkernel=8G,low"]), reasons
