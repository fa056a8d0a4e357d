"""The judges of the relocation copy's edges, on real logs with one thing
broken at a time: a normal image refused the protected crash kernel region
(crash-region-load), hibernation with a no-map region sharing a page with
RAM (hibernate kx.nomap=sub-page), and where a hung guest's CPUs were."""
import json

import pytest

from kxbench import machine, runner
from kxbench.scenarios import hibernate
from test_crashkernel import LOGS, assert_fails, rejudge_edited

REGION = LOGS / "crash-region-load-4k-48-pass.log"
REGION_V2 = LOGS / "crash-region-load-4k-48-v2-fail.log"
NOMAP = LOGS / "hibernate-sub-page-nomap-64k-48-pass.log"
RESMEM = "KX-RESMEM name=kx-nomap@50005800 reg=00000000500058000000000000002000 nomap=yes"


def test_the_edge_logs_pass_and_version_2_fails_for_its_reason():
    assert runner.rejudge(REGION)[0].passed
    assert runner.rejudge(NOMAP)[0].passed
    v, _ = runner.rejudge(REGION_V2)
    assert_fails(v, "kexec_load() accepted a normal image inside the protected crash kernel")
    assert_fails(v, "the CPUs then: EL1 PC=")


@pytest.mark.parametrize("old, new, says", [
    ("KX-CRASHRES range=6e000000-7dffffff", "KX-NOTHING", "no crash kernel region"),
    ("KX-CRASH-LOADED loaded=1", "KX-CRASH-LOADED loaded=0", "kexec -p loaded no crash kernel"),
    ("KX-CRASH-REGION-LOAD rc=", "KX-NOTHING rc=", "no load into the crash kernel region"),
    ("in_region=yes", "in_region=no", "the check proves nothing"),
    ("rc=255 in_region=yes loaded=0", "rc=0 in_region=yes loaded=1",
     "accepted a normal image inside the protected crash kernel region"),
    ("error=Cannot_assign_requested_address", "error=Invalid_argument", "not EADDRNOTAVAIL"),
])
def test_crash_region_load_fails_on_each_broken_piece(tmp_path, old, new, says):
    assert_fails(rejudge_edited(REGION, tmp_path, old, new), says)


def nomap_verdict(tmp_path, expect_edit=None, old=None, new=None):
    """NOMAP judged again, its log edited (OLD -> NEW in every boot) and its
    judge's expectation edited by EXPECT_EDIT."""
    copy = tmp_path / NOMAP.name
    text = NOMAP.read_text()
    copy.write_text(text.replace(old, new) if old else text)
    record = json.loads(NOMAP.with_suffix(".json").read_text())
    if expect_edit:
        expect_edit(record["judge_args"][0])
    copy.with_suffix(".json").write_text(json.dumps(record))
    return runner.rejudge(copy)[0]


def test_hibernate_with_a_sub_page_nomap_region_fails_on_each_broken_piece(tmp_path):
    v = nomap_verdict(tmp_path, lambda e: e.pop("nomap"))
    assert_fails(v, "but no region was added")
    aligned = nomap_verdict(tmp_path, lambda e: e.update(nomap=[0x50000000, 0x50010000]))
    assert_fails(aligned, "lines up with a page: it proves nothing")
    for boot in ("hibernating", "resuming"):
        assert_fails(nomap_verdict(tmp_path, old=RESMEM, new="KX-NOTHING"),
                     f"{boot} boot: no no-map region 0x50005800-0x50007800")
    # The option must be asked for: the same log without it does not check.
    assert hibernate.SUB_PAGE_NOMAP in json.loads(NOMAP.with_suffix(".json").read_text())[
        "append"]


REGS = """CPU#0
 PC=0000000041812a04 X00=000000004694b002 X01=0000000070db06a0
PSTATE=000003c5 ---- EL1h     FPCR=00000000 FPSR=00000000
CPU#1
 PC=ffff800010012345 X00=0000000000000000 X01=0000000000000000
PSTATE=600003c9 -ZC- EL2h     FPCR=00000000 FPSR=00000000
"""


def test_the_cpus_of_a_hung_guest_are_summarized_and_read_back(tmp_path):
    assert machine.cpu_summary(REGS) == ("EL1 PC=0000000041812a04 X0=000000004694b002, "
                                         "EL2 PC=ffff800010012345 X0=0000000000000000")
    assert machine.cpu_summary("(none: QEMU made no QMP socket)") == ""
    log = tmp_path / "hung.log"
    log.write_text("# qemu-system-aarch64 -M virt\n[    0.500] KX-EXEC gen=0\n"
                   f"{machine.CPUS_MARK}\n" + "".join(f"# {ln}\n" for ln in REGS.splitlines())
                   + "# killed by the workbench after 5 s\n# exit None after 5.000 s\n")
    (boot,) = machine.read_log(log)
    assert boot.timed_out and boot.cpus_at_timeout.startswith("EL1 PC=0000000041812a04")


ABOVE_4G = LOGS / "kdump-ram-above-4g-high-pass.log"


@pytest.mark.parametrize("old, new, says", [
    ("KX-RAM gen=1 ranges=100000000-1bfffffff", "KX-RAM gen=1 ranges=40000000-1bfffffff",
     "had RAM 0x40000000-0x1c0000000, not all of it above 4 GiB"),
    ("KX-RAM gen=1 ranges=100000000-1bfffffff", "KX-NOTHING", "had RAM none"),
    ("KX-CRASH-RANGES ranges=1a0000000-1bfffffff", "KX-CRASH-RANGES ranges=b0000000-cfffffff",
     "bytes above 4 GiB (all RAM is there)"),
])
def test_kdump_with_ram_above_4g_fails_on_each_broken_piece(tmp_path, old, new, says):
    assert runner.rejudge(ABOVE_4G)[0].passed
    assert_fails(rejudge_edited(ABOVE_4G, tmp_path, old, new), says)
