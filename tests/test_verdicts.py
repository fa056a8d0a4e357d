"""Verdicts come from evidence: each must fail when the evidence is wrong."""
import pytest

from kxbench.machine import Boot, Line
from kxbench.scenarios import (common, hibernate, kdump, kexec_reboot, kunit,
                               memory_hotplug, mmu_state, ptdump, reloc_fault)

TOKEN, SHA = "0123456789abcdef", "a" * 64
BYTES = 32 << 20


def boot(*texts, timed_out=False, exit_code=0):
    return Boot(lines=[Line(float(i), t) for i, t in enumerate(texts)],
                timed_out=timed_out, exit_code=None if timed_out else exit_code)


def ctx(scenario="kexec-reboot", profile="dt-el2", config="4k-48", **kw):
    return common.Context(scenario=scenario, profile=profile, config=config, **kw)


def klog(gen=0, role="main", **counts):
    """A KX-KLOG line: the kernel log's error counts, zero unless given."""
    c = {k: counts.get(k, 0) for k in common.KLOG_COUNTS}
    return f"KX-KLOG gen={gen} role={role} " + " ".join(f"{k}={x}" for k, x in c.items())


def reboot_lines(token=TOKEN, sha=SHA, el=2, efi="no", mode="load", gens=1):
    out = [f"KX-BOOT scenario=s gen=0 role=main el={el} efi={efi} acpi=no cpus=1 "
           f"memfree_kb=1000000 boot_id=b0 release=5.10.223-kx"]
    segs = "none" if mode == "file" else "0x48000000+0x2000000,0x4a000000+0xd30000,"
    for g in range(1, gens + 1):
        out += [f"KX-PLACEMENT gen={g - 1} kernel_code=40210000-40f8ffff "
                f"kernel_data=41000000-4107ffff segments={segs} placement=default",
                f"KX-LOADED gen={g - 1} mode={mode} load_ns=900000000 "
                f"memfree_before_kb=950000 memfree_after_kb=900000 segment_bytes=47308800 "
                f"loaded=1",
                klog(g - 1),
                f"KX-EXEC gen={g - 1}",
                f"KX-BOOT scenario=s gen={g} role=main el={el} efi={efi} acpi=no cpus=1 "
                f"memfree_kb=970000 boot_id=b{g} release=5.10.223-kx",
                f"KX-GEN gen={g} token={token} sha256={sha} payload_bytes={BYTES} el={el} "
                f"efi={efi}"]
    return out + [klog(gens), f"KX-DONE gen={gens}"]


def reboot_expect(gens=1, mode="load"):
    return {"token": TOKEN, "sha256": SHA, "payload_bytes": BYTES, "gens": gens, "mode": mode}


def test_reboot_passes_on_matching_evidence():
    v = kexec_reboot.judge(boot(*reboot_lines()), ctx(), reboot_expect())
    assert v.passed, v.reasons
    assert v.evidence["generations"][0]["token"] == TOKEN
    assert v.metrics["exec_to_userspace_s"] == 1.0
    assert v.metrics["load_overhead_kb"] == 950000 - 900000 - 47308800 // 1024


@pytest.mark.parametrize("bad, needle", [
    (dict(token="fedcba9876543210"), "token"),
    (dict(sha="b" * 64), "sha256"),
    (dict(el=1), "EL1"),
    (dict(efi="yes"), "efi"),
    (dict(mode="file"), "kexec_file"),
])
def test_reboot_fails_on_wrong_evidence(bad, needle):
    v = kexec_reboot.judge(boot(*reboot_lines(**bad)), ctx(), reboot_expect())
    assert not v.passed
    assert any(needle in r for r in v.reasons), v.reasons


def test_reboot_fails_when_the_guest_never_prints():
    v = kexec_reboot.judge(boot(), ctx(), reboot_expect())
    assert not v.passed
    assert any("printed nothing" in r for r in v.reasons)


def test_reboot_fails_on_timeout_and_names_the_last_line():
    lines = reboot_lines()[:5]   # loaded, log reported and exec'd, then silence
    v = kexec_reboot.judge(boot(*lines, timed_out=True), ctx(), reboot_expect())
    assert not v.passed
    assert any("timed out" in r for r in v.reasons)
    assert v.first_bad_line.startswith("KX-EXEC")


def test_chain_needs_every_generation():
    lines = reboot_lines(gens=3)
    assert kexec_reboot.judge(boot(*lines), ctx("kexec-chain", gens=3),
                              reboot_expect(gens=3)).passed
    missing = [ln for ln in lines if not ln.startswith("KX-GEN gen=3")]
    v = kexec_reboot.judge(boot(*missing), ctx("kexec-chain", gens=3), reboot_expect(gens=3))
    assert not v.passed


def test_uefi_expects_efi():
    c = ctx(profile="uefi")
    assert kexec_reboot.judge(boot(*reboot_lines(efi="yes")), c, reboot_expect()).passed
    assert not kexec_reboot.judge(boot(*reboot_lines(efi="no")), c, reboot_expect()).passed


def test_el1_profile_expects_el1():
    c = ctx(profile="dt-el1")
    assert kexec_reboot.judge(boot(*reboot_lines(el=1)), c, reboot_expect()).passed
    assert not kexec_reboot.judge(boot(*reboot_lines(el=2)), c, reboot_expect()).passed


CHUNKS = 8192


def kdump_lines(found=CHUNKS, corrupt=0, rc=0, pagesize=4096, token=TOKEN, info=1):
    return [
        "KX-BOOT scenario=kdump gen=0 role=main el=2 efi=no acpi=no cpus=1 memfree_kb=1 "
        "boot_id=x release=5.10.223-kx",
        "KX-CRASH-RANGES ranges=70000000-7fffffff",
        "KX-CRASH-MODE mode=load",
        "KX-CRASH-LOADED loaded=1",
        f"KX-PLANTED token={TOKEN} chunks={CHUNKS} pid=70",
        klog(0),
        "KX-CRASH gen=0",
        "KX-BOOT scenario=kdump gen=0 role=capture el=2 efi=no acpi=no cpus=1 memfree_kb=1 "
        "boot_id=y release=5.10.223-kx",
        "KX-USABLE ranges=0x0000000070000000+0x0000000010000000",
        "KX-SYSRAM ranges=70000000-7fffffff",
        "KX-VMCORE-ELF class=2 data=1 type=4 machine=183 phnum=4",
        "KX-VMCOREINFO OSRELEASE=5.10.223-kx",
        f"KX-VMCOREINFO PAGESIZE={pagesize}",
        f"KX-VMCORE-NOTES notes=1 vmcoreinfo={info}",
        f"KX-VMCORE-PATTERN token={token} loads=3 scanned_mib=772 expected={CHUNKS} "
        f"found={found} corrupt={corrupt}",
        f"KX-MAKEDUMPFILE rc={rc} bytes={0 if rc else 123456} sig={'' if rc else 'KDUMP'}",
        klog(0, "capture"),
        "KX-DONE gen=0",
    ]


KD_EXPECT = {"token": TOKEN, "chunks": CHUNKS}


def test_kdump_passes_on_matching_evidence():
    v = kdump.judge(boot(*kdump_lines()), ctx("kdump"), KD_EXPECT)
    assert v.passed, v.reasons


@pytest.mark.parametrize("bad", [dict(found=CHUNKS - 1), dict(corrupt=1), dict(rc=1),
                                 dict(pagesize=65536), dict(token="ffff"), dict(info=0)])
def test_kdump_fails_on_wrong_evidence(bad):
    assert not kdump.judge(boot(*kdump_lines(**bad)), ctx("kdump"), KD_EXPECT).passed


def test_kdump_fails_without_a_capture_kernel():
    lines = kdump_lines()[:4]
    assert not kdump.judge(boot(*lines, timed_out=True), ctx("kdump"), KD_EXPECT).passed


def hib_boots(intact=CHUNKS, resumed_id="b0", none=False, hib_exit=0):
    first = boot(
        "KX-BOOT scenario=hibernate gen=0 role=main el=2 efi=no acpi=no cpus=1 "
        "memfree_kb=1 boot_id=b0 release=r",
        f"KX-PLANTED token={TOKEN} chunks={CHUNKS} pid=80",
        "KX-HIBERNATE boot_id=b0", klog(0), exit_code=hib_exit)
    second = ["KX-BOOT scenario=hibernate gen=0 role=resume el=2 efi=no acpi=no cpus=1 "
              "memfree_kb=1 boot_id=b9 release=r", "KX-RESUME-TRY dev=254:0"]
    if none:
        second.append("KX-RESUME-NONE rc=1")
    else:
        second += [f"KX-HELD token={TOKEN} chunks={CHUNKS} intact={intact} pid=80",
                   f"KX-RESUMED boot_id={resumed_id} token={TOKEN} el=2"]
    return first, boot(*second, klog(0), "KX-DONE gen=0")


def test_hibernate_passes_on_matching_evidence():
    v = hibernate.judge(*hib_boots(), ctx("hibernate"), KD_EXPECT)
    assert v.passed, v.reasons


@pytest.mark.parametrize("bad", [dict(intact=CHUNKS - 1), dict(resumed_id="b9"),
                                 dict(none=True)])
def test_hibernate_fails_on_wrong_evidence(bad):
    assert not hibernate.judge(*hib_boots(**bad), ctx("hibernate"), KD_EXPECT).passed


def test_hibernate_fails_if_the_first_boot_never_powers_off():
    first, second = hib_boots()
    first.timed_out = True
    assert not hibernate.judge(first, second, ctx("hibernate"), KD_EXPECT).passed


KTAP = ["[    0.5] TAP version 14", "[    0.5] 1..2",
        "[    0.5]     # Subtest: trans_pgd", "[    0.5]     1..2",
        "[    0.6]     ok 1 - copy_linear_map", "[    0.6]     ok 2 - idmap_t0sz",
        "[    0.6] ok 1 - trans_pgd",
        "[    0.6]     # Subtest: other", "[    0.6]     1..1",
        "[    0.6]     not ok 1 - broken", "[    0.6] not ok 2 - other",
        "KX-BOOT scenario=kunit gen=0 role=main el=2 efi=no acpi=no cpus=1 memfree_kb=1 "
        "boot_id=x release=r", klog(0), "KX-DONE gen=0"]


def test_ktap_parser_reads_suites_and_cases():
    suites = kunit.parse_ktap(KTAP)
    assert suites["trans_pgd"] == {"ok": True,
                                   "cases": {"copy_linear_map": True, "idmap_t0sz": True}}
    assert suites["other"] == {"ok": False, "cases": {"broken": False}}


def test_kunit_passes_only_when_the_expected_suite_ran_and_passed():
    c = ctx("kunit")
    assert kunit.judge(boot(*KTAP), c, {"suites": {"trans_pgd": 1}}).passed
    assert not kunit.judge(boot(*KTAP), c, {"suites": {"trans_pgd": 1, "other": 1}}).passed
    assert not kunit.judge(boot(*KTAP), c, {"suites": {"absent": 1}}).passed
    no_cases = [t for t in KTAP if "    ok" not in t]
    assert not kunit.judge(boot(*no_cases), c, {"suites": {"trans_pgd": 1}}).passed
    no_header = [t for t in KTAP if "TAP version" not in t]
    assert not kunit.judge(boot(*no_header), c, {"suites": {"trans_pgd": 1}}).passed


def test_ptdump_counts_only_mapped_linear_map_leaves():
    texts = [
        "KX-PT 0x0000000000000000-0xffff000000000000   17179869184G PGD",
        "KX-PT 0xffff000000000000-0xffff000040000000           1G PUD  RW NX SHD AF BLK UXN",
        "KX-PT 0xffff000040000000-0xffff000040200000           2M PMD  RW NX SHD AF BLK UXN",
        "KX-PT 0xffff000040200000-0xffff000040400000           2M PTE  RW NX SHD AF UXN",
        "KX-PT 0xffff000040400000-0xffff000080000000        1020M PMD",
        "KX-PT 0xffff800010000000-0xffff800010200000           2M PTE  ro x  SHD AF UXN",
    ]
    counts, mapped = ptdump.leaf_counts(texts, 4096, 48)
    assert counts == {"PUD": 1, "PMD": 1, "PTE": 512}   # vmalloc/kernel image excluded
    assert mapped == (1 << 30) + (4 << 20)
    assert ptdump.linear_map(52) == ((1 << 64) - (1 << 52), (1 << 64) - (1 << 47))
    assert ptdump.translations(texts, 4096, 48) == 1 + 1 + 512


def test_ptdump_counts_a_contiguous_run_as_one_translation():
    """16K and 64K pages: 2 MiB contiguous runs of pages (CON); 4K: 32 MiB
    runs of 2 MiB blocks."""
    for page, run in ((16384, 2 << 20), (65536, 2 << 20)):
        texts = ["KX-PT 0xffff000040000000-0xffff000040800000  8M PTE  RW NX SHD AF CON UXN",
                 "KX-PT 0xffff000040800000-0xffff000040810000  64K PTE  RW NX SHD AF UXN"]
        assert ptdump.translations(texts, page, 48) == (8 << 20) // run + (64 << 10) // page
    texts = ["KX-PT 0xffff000040000000-0xffff000044000000  64M PMD  RW NX SHD AF CON BLK UXN"]
    assert ptdump.translations(texts, 4096, 48) == 2


def st(el, sctlr, pc=0x1000):
    return {"pc": pc, "el": el, "sctlr": sctlr}


ON = mmu_state.SCTLR_M | mmu_state.SCTLR_C | mmu_state.SCTLR_I
OFF = mmu_state.SCTLR_EL1_RESET
TLBI = [{"offset": 40, "op": "vmalle1", "repeat_tlbi": True}]


VBAR_EL2 = 0x47ff0000
# What kexec -e cleans to the PoC: the routine's page (its samples stand at
# 0x1000 less their offset) and the EL2 vectors.
CLEANS = [{"name": "__clean_dcache_area_poc", "va": 0xffff000000000000, "size": 0x2000,
           "pa": 0},
          {"name": "__clean_dcache_area_poc", "va": 0xffff000007ff0000, "size": 0x800,
           "pa": VBAR_EL2}]


def with_vbar(samples):
    """SAMPLES as sample() records them: an offset, VBAR_EL2 in the first."""
    out = [{"offset": 0, **st_} for st_ in samples]
    return [{"vbar_el2": VBAR_EL2, **out[0]}] + out[1:] if out else out


def mmu_judge(boot_, samples, jump, mmu_off=None, tlbis=TLBI, cleans=CLEANS):
    return mmu_state.judge(boot_, ctx("mmu-state"), reboot_expect(), with_vbar(samples), jump,
                           mmu_off, tlbis, cleans)


def test_mmu_state_passes_only_with_mmu_and_caches_on_while_copying():
    good = boot(*reboot_lines())
    assert mmu_judge(good, [st(1, ON | OFF)] * 3, st(1, OFF)).passed
    # The base: copying at EL2 with the MMU off.
    v = mmu_judge(good, [st(2, 0x30c50830)], st(2, 0x30c50830))
    assert not v.passed and "EL2" in v.first_bad_line and "M=0" in v.first_bad_line
    # MMU on but D-cache off is not enough; nor is MMU still on at the jump.
    assert not mmu_judge(good, [st(1, ON & ~mmu_state.SCTLR_C)], st(1, OFF)).passed
    assert not mmu_judge(good, [st(1, ON)], st(1, ON)).passed
    # No sample in the routine, too few, or no jump caught: no verdict from absence.
    assert not mmu_judge(good, [], st(1, OFF)).passed
    v = mmu_judge(good, [st(1, ON)] * 2, st(1, OFF))
    assert not v.passed and "fewer than 3" in " ".join(v.reasons)
    assert not mmu_judge(good, [st(1, ON)], None).passed


def test_mmu_state_judges_samples_after_the_mmu_off_write_as_the_tail():
    """The instructions after the routine turns the MMU off run with M clear
    by design: a sample there is not a copy sample, but must show M clear."""
    good = boot(*reboot_lines())
    copy, tail = {**st(1, ON), "offset": 132}, {**st(1, OFF), "offset": 260}
    v = mmu_judge(good, [copy] * 3 + [tail], st(1, OFF), 248)
    assert v.passed and len(v.evidence["tail_samples"]) == 1
    # Without the MMU-off offset, the same tail sample is a copy sample and fails.
    assert not mmu_judge(good, [copy] * 3 + [tail], st(1, OFF)).passed
    # A tail sample with the MMU still on, or a copy sample with it off, fails.
    assert not mmu_judge(good, [copy] * 3 + [{**tail, "sctlr": ON}], st(1, OFF), 248).passed
    assert not mmu_judge(good, [copy] * 3 + [{**copy, "sctlr": OFF}], st(1, OFF), 248).passed
    # Only tail samples: the copy was never seen.
    assert not mmu_judge(good, [tail], st(1, OFF), 248).passed


def test_mmu_state_wants_sctlr_reset_at_the_jump_and_the_repeated_tlbi():
    """The new image gets SCTLR_EL1 as out of reset (no pointer auth or
    other enables left on), and the routine's TLBI has the erratum's repeat."""
    good = boot(*reboot_lines())
    assert mmu_judge(good, [st(1, ON)] * 3, st(1, OFF)).passed
    v = mmu_judge(good, [st(1, ON)], st(1, OFF | (1 << 31)))     # EnIA left on
    assert not v.passed and "reset value" in " ".join(v.reasons)
    assert not mmu_judge(good, [st(1, ON)] * 3, st(1, OFF), tlbis=[]).passed
    v = mmu_judge(good, [st(1, ON)] * 3, st(1, OFF), tlbis=[{**TLBI[0], "repeat_tlbi": False}])
    assert not v.passed and "REPEAT_TLBI" in " ".join(v.reasons)


def test_mmu_state_wants_the_mmu_off_code_cleaned_to_the_poc_at_kexec_e():
    """The routine and the EL2 vectors, whatever cleaned them at load time."""
    good = boot(*reboot_lines())
    assert mmu_judge(good, [st(1, ON)] * 3, st(1, OFF)).passed
    v = mmu_judge(good, [st(1, ON)] * 3, st(1, OFF), cleans=[])
    assert not v.passed and "was not cleaned to the PoC" in " ".join(v.reasons)
    assert "calls seen: none" in " ".join(v.reasons)
    # A clean that stops short of the exit, or misses the vectors.
    short = [{**CLEANS[0], "size": 0x1000}, CLEANS[1]]
    assert not mmu_judge(good, [st(1, ON)] * 3, st(1, OFF), cleans=short).passed
    v = mmu_judge(good, [st(1, ON)] * 3, st(1, OFF), cleans=CLEANS[:1])
    assert not v.passed and "EL2 vectors at VBAR_EL2" in " ".join(v.reasons)
    # An address the live tables do not map proves nothing.
    unmapped = [{**CLEANS[0], "pa": None}, CLEANS[1]]
    assert not mmu_judge(good, [st(1, ON)] * 3, st(1, OFF), cleans=unmapped).passed
    # A jump at EL2 (the base, or VHE) leaves EL2's vectors out of it.
    assert mmu_state.covers(CLEANS[:1], 0, 0x1004)


def test_mmu_state_finds_pc_in_the_routine_by_its_bytes():
    code = bytes(range(64))
    assert mmu_state.match_offset(code, code[12:44]) == 12
    assert mmu_state.match_offset(code, code[60:64] + b"\xff" * 28) is None  # too short
    assert mmu_state.match_offset(code, b"\xee" * 32) is None


def test_mmu_state_reads_el1s_sctlr_for_el0():
    class FakeStub:
        regs = {"pc": 0, "cpsr": 1, "SCTLR": 2}   # no EL2 on a virtualization=off machine

        def reg(self, name):
            return {"pc": 0x400000, "cpsr": 0x0, "SCTLR": 0x30d0199d}[name]

        def mem(self, addr, length):
            return b"\0" * length
    s = mmu_state.read_state(FakeStub())
    assert s["el"] == 0 and s["sctlr"] == 0x30d0199d
    assert "SCTLR_EL1" in mmu_state.describe(s)


def parked(**over):
    routine = 0x46cf7000
    park = {"routine": routine, "load": routine + 0x7c, "bad_va": 0xffff800010a4f000,
            "base_reg": "x12", "pc": routine + 0x800 + 0x200, "cpsr": 0x3c5,
            "vbar_el1": routine + 0x800, "esr_el1": 0x96000006,
            "far_el1": 0xffff800010a4f000, "elr_el1": routine + 0x7c}
    return {**park, **over}


def test_reloc_fault_passes_only_when_parked_in_the_routines_vectors():
    good = boot(*reboot_lines()[:5])    # gen 0 booted, loaded, reported its log, kexec -e
    c = ctx("reloc-fault")
    assert reloc_fault.judge(good, c, parked()).passed
    # v1: VBAR_EL1 still in the kernel image, the CPU spinning on its vector.
    v = reloc_fault.judge(good, c, parked(vbar_el1=0xffff800010011800,
                                          pc=0xffff800010011a00))
    assert not v.passed and "VBAR_EL1" in v.first_bad_line
    assert not reloc_fault.judge(good, c, parked(pc=parked()["load"])).passed
    assert not reloc_fault.judge(good, c, parked(esr_el1=0x86000006)).passed   # insn abort
    assert not reloc_fault.judge(good, c, parked(far_el1=0)).passed
    assert not reloc_fault.judge(good, c, parked(elr_el1=0)).passed
    assert not reloc_fault.judge(good, c, parked(cpsr=0x3c9)).passed            # EL2
    assert not reloc_fault.judge(good, c, None).passed
    assert not reloc_fault.judge(boot(*reboot_lines()[:1]), c, parked()).passed  # no KX-EXEC


def memhp_lines(offlined_loaded="0", refusals="2", loop_loaded="0", gone="yes", in_dimm="yes",
                offline_load="rc=255 in_dimm=yes loaded=0 error=Cannot_assign_requested_address",
                file_load="offline=1 of=1 rc=0 loaded=1 error=none"):
    segs = "0xc0000000+0x100000,"
    load = [f"KX-MEMHP-LOADED i={i} rc=0 in_dimm={in_dimm} loaded=1 segments={segs}"
            for i in range(memory_hotplug.ROUNDS + 1)]
    lines = reboot_lines(efi="yes", el=2)
    return ([lines[0], "KX-MEMHP-READY gen=0",
             f"KX-MEMHP-LOAD-OFFLINE offline=1 of=1 {offline_load} segments={segs}"
             if offline_load else "KX-NOTHING",
             f"KX-MEMHP-FILE-OFFLINE {file_load}" if file_load else "KX-NOTHING",
             "KX-MEMHP-ADDED blocks=1 lo=0xc0000000 hi=0xffffffff online=1", load[0],
             f"KX-MEMHP-OFFLINE-LOADED i=0 offlined={offlined_loaded} of=1 refusals={refusals}",
             "KX-MEMHP-EJECT-LOADED gen=0", "KX-MEMHP-AFTER-EJECT present=1 online=1"] +
            [x for i in range(1, memory_hotplug.ROUNDS + 1) for x in
             (load[i], f"KX-MEMHP-LOOP i={i} offlined_unloaded=1 onlined=1 "
                       f"offlined_loaded={loop_loaded} of=1")] +
            ["KX-MEMHP-UNLOADED offlined=1 of=1 loaded=0", "KX-MEMHP-EJECT-UNLOADED gen=0",
             f"KX-MEMHP-REMOVED gone={gone}"] + lines[1:])


def test_memory_hotplug_passes_only_when_loaded_memory_stays_and_unloaded_goes():
    c = ctx("memory-hotplug", profile="uefi")
    ok = {"loaded": False, "unloaded": True}
    v = memory_hotplug.judge(boot(*memhp_lines()), c, reboot_expect(), ok)
    assert v.passed, v.reasons
    # v1: nothing stops offlining or removal with an image loaded.
    assert not memory_hotplug.judge(boot(*memhp_lines(offlined_loaded="1")), c,
                                    reboot_expect(), ok).passed
    assert not memory_hotplug.judge(boot(*memhp_lines(loop_loaded="1")), c,
                                    reboot_expect(), ok).passed
    assert not memory_hotplug.judge(boot(*memhp_lines()), c, reboot_expect(),
                                    {"loaded": True, "unloaded": True}).passed
    # A load into memory that is offline at load time is accepted (version 2),
    # refused for another reason, or tried on blocks that are online.
    for bad in ("rc=0 in_dimm=yes loaded=1 error=none",
                "rc=255 in_dimm=yes loaded=0 error=Invalid_argument",
                "rc=255 in_dimm=no loaded=0 error=Cannot_assign_requested_address", None):
        assert not memory_hotplug.judge(boot(*memhp_lines(offline_load=bad)), c,
                                        reboot_expect(), ok).passed, bad
    # kexec_file_load() placing a segment in the offline DIMM (version 3 as
    # first written), or tried with the DIMM online, or not at all.
    for bad in ("offline=1 of=1 rc=255 loaded=0 error=Cannot_assign_requested_address",
                "offline=0 of=1 rc=0 loaded=1 error=none", None):
        assert not memory_hotplug.judge(boot(*memhp_lines(file_load=bad)), c,
                                        reboot_expect(), ok).passed, bad
    # No reason in the log, segments outside the DIMM, no removal after unload.
    assert not memory_hotplug.judge(boot(*memhp_lines(refusals="0")), c, reboot_expect(),
                                    ok).passed
    assert not memory_hotplug.judge(boot(*memhp_lines(in_dimm="no")), c, reboot_expect(),
                                    ok).passed
    assert not memory_hotplug.judge(boot(*memhp_lines(gone="no")), c, reboot_expect(),
                                    {"loaded": False, "unloaded": False}).passed
    assert not memory_hotplug.judge(boot(*memhp_lines()), c, reboot_expect(), {}).passed
    # The reboot after it must hold too.
    lines = [ln for ln in memhp_lines() if not ln.startswith("KX-GEN")]
    assert not memory_hotplug.judge(boot(*lines), c, reboot_expect(), ok).passed


def test_every_kernel_reports_its_log_and_any_error_fails_the_scenario():
    """The console shows only emergencies: a WARN is seen only in the counts
    each boot prints from its log buffer (KX-KLOG)."""
    good = reboot_lines()
    assert kexec_reboot.judge(boot(*good), ctx(), reboot_expect()).passed
    for key in common.KLOG_COUNTS:
        bad = [klog(1, **{key: 1}) if ln == klog(1) else ln for ln in good]
        v = kexec_reboot.judge(boot(*bad), ctx(), reboot_expect())
        assert not v.passed and f"gen 1 main kernel log: {key}=1" in " ".join(v.reasons)
    # A kernel that booted but never reported its log fails too.
    silent = [ln for ln in good if ln != klog(1)]
    v = kexec_reboot.judge(boot(*silent), ctx(), reboot_expect())
    assert not v.passed and "2 kernels booted, 1 reported" in " ".join(v.reasons)
    # kdump's capture kernel and hibernate's resumed kernel are judged alike.
    kd = [klog(0, "capture", warnings=2) if ln == klog(0, "capture") else ln
          for ln in kdump_lines()]
    assert not kdump.judge(boot(*kd), ctx("kdump"), KD_EXPECT).passed
    first, second = hib_boots()
    second.lines[-2] = Line(0.0, klog(0, oopses=1))
    assert not hibernate.judge(first, second, ctx("hibernate"), KD_EXPECT).passed


def test_hibernate_reads_the_live_boot_id_after_resume():
    """A kernel that booted afresh instead of restoring reports its own boot
    id; the judge names that, not only the mismatch."""
    v = hibernate.judge(*hib_boots(resumed_id="b9"), ctx("hibernate"), KD_EXPECT)
    assert not v.passed and any("nothing was restored" in r for r in v.reasons)
