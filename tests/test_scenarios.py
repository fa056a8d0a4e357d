"""The scenario matrix: each cell boots QEMU through ./kx run and passes only
on the evidence the guest printed (see kxbench/scenarios/)."""
import os
import re
from pathlib import Path

import pytest

from kxbench import matrix
from kxbench.matrix import kx_run

# tests/conftest.py picks the seed once per run and prints it in the header.
SEED = int(os.environ.get("KX_MATRIX_SEED") or 0)
# The fixed cells (kxbench/matrix.py's fixed_cells(), each with why it is
# there) run in every seed that builds their kernel; the rest of the kexec
# matrix rotates through make check, a share of it in each seed.
CELLS = matrix.fixed(SEED)
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


@pytest.mark.skipif(matrix.SERVER not in matrix.kernels(SEED),
                    reason="LKDTM is in the server variant, which this seed does not build "
                    "(it rotates: kxbench/matrix.py's builds())")
@pytest.mark.parametrize("warn", [True, False])
def test_a_kernel_warning_fails_the_reboot_with_the_warning_named(warn):
    """A deliberately warning kernel (LKDTM's WARNING, provoked by kx.warn=1
    in every generation) must fail the reboot judge on that warning; the same
    kernel without it passes, so the warning is what failed it. It runs in
    the seeds that build the server variant."""
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
    reserves nothing, silently. The judge must say so for those three cases,
    and for nothing else (crashkernel=64G and =foo get their messages)."""
    rc, out, record = kx_run("bad-crashkernel", "--kernel", "base")
    assert rc == 1 and record["status"] == "FAIL", out
    reasons = record["reasons"]
    assert all("the kernel did not say" in r for r in reasons), reasons
    assert sorted(r.split(" (")[0] for r in reasons) == sorted(
        ["crashkernel=128M,low", "crashkernel=4G,high",
         "crashkernel=512M,high crashkernel=8G,low"]), reasons


# The unmodified v6.12 (design.md section 11): it relocates with the MMU on
# already, so it passes kexec-reboot and the rest, and must fail exactly the
# checks that prove the v6.12 series' patches, each for its own reason.
def test_ptwalk_fails_on_the_v612_base_for_its_page_granular_copy():
    """v6.12 copies the linear map entry for entry: under rodata=full on
    4K pages, hundreds of table pages where the series needs a handful."""
    rc, out, record = kx_run("ptwalk", "--kernel", "base-6.12")
    assert rc == 1 and record["status"] == "FAIL", out
    assert len(record["reasons"]) == 1, record["reasons"]
    m = re.match(r"the relocation tables take (\d+) pages, not fewer than 32 ",
                 record["reasons"][0])
    assert m and int(m.group(1)) > 256, record["reasons"]


def test_reloc_fault_fails_on_the_v612_base_where_vbar_is_the_kernels():
    """v6.12 copies with VBAR_EL1 on the kernel's vectors, which its copy of
    the linear map does not map: the injected fault is followed by aborts on
    the vector fetch, and nothing parks in the routine's page."""
    rc, out, record = kx_run("reloc-fault", "--kernel", "base-6.12")
    assert rc == 1 and record["status"] == "FAIL", out
    assert any(re.match(r"VBAR_EL1 0x[0-9a-f]+ is not the routine's vectors at ", r)
               for r in record["reasons"]), record["reasons"]


def test_crash_protect_fails_on_the_v612_base_for_leaving_the_region_mapped():
    """v6.4 dropped the protection of the loaded crash kernel: v6.12 leaves
    the whole region mapped, and /proc/kcore reads it. It keeps its larger
    blocks, so the region takes fewer translations, which is no failure."""
    rc, out, record = kx_run("crash-protect", "--kernel", "base-6.12")
    assert rc == 1 and record["status"] == "FAIL", out
    reasons = record["reasons"]
    assert any(re.match(r"while loaded, (\d+) of \1 2 MiB units of the crash kernel "
                        r"region are still mapped", r) for r in reasons), reasons
    assert any(r.startswith("/proc/kcore read the region while loaded") for r in reasons), \
        reasons
    assert len(reasons) == 2, reasons


def test_mmu_state_fails_on_the_v612_base_for_its_cleans_and_its_tlbi():
    """v6.12 copies at EL1 with the MMU and caches on, like the series, but
    cleans the routine and the EL2 vectors to the PoC at load time only, and
    its TLB invalidation lacks the repeat-TLBI alternative."""
    rc, out, record = kx_run("mmu-state", "--kernel", "base-6.12")
    assert rc == 1 and record["status"] == "FAIL", out
    reasons = record["reasons"]
    assert any(r.startswith("the relocation routine ") and "was not cleaned to the PoC" in r
               for r in reasons), reasons
    assert "a TLBI of the routine lacks the ARM64_WORKAROUND_REPEAT_TLBI alternative" \
        in reasons, reasons
    # The EL2 vectors too, where EL2 starts the new image (dt-el2).
    others = [r for r in reasons if "not cleaned to the PoC" not in r
              and "REPEAT_TLBI" not in r]
    assert not others, others
