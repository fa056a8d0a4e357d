"""The ptwalk judge on synthetic walks, dumps and /proc/iomem: it must fail
on each way relocation tables can be wrong, and pass only on a
copy that maps exactly the linear map less the pages holding nomap bytes."""
import dataclasses

import pytest

from kxbench import armpt
from kxbench.armpt import Run, Walk
from kxbench.scenarios import mmu_state, ptwalk
from test_armpt import AF, BLOCK, PAGE, PXN, Memory, build, tcr
from test_verdicts import boot, ctx, reboot_expect, reboot_lines

PAGE_OFFSET = 0xFFFF5E46C0000000      # where KASLR put the linear map
RAM = (0x40000000, 0x80000000)
OFFSET = PAGE_OFFSET - RAM[0]
HOLE = (0x50005000, 0x50008000)       # the DT no-map region: 12 KiB, 4K-aligned only
PC = 0x468D806C
ON = mmu_state.SCTLR_M | mmu_state.SCTLR_C | mmu_state.SCTLR_I


def ptdump_line(va, end, level="PTE", attrs="RW NX SHD AF NG UXN MEM/NORMAL"):
    return f"KX-PT {va:#018x}-{end:#018x}   4K {level}   {attrs}"


def guest_lines(linear, hole=HOLE, resmem=True, iomem_reserved=()):
    """What the guest prints before KX-EXEC: iomem, reserved-memory, the dump."""
    out = ["KX-IOMEM 09000000-09000fff : pl011@9000000",
           "KX-IOMEM 40000000-50004fff : System RAM",
           "KX-IOMEM   40200000-4053ffff : Kernel code",
           "KX-IOMEM   48000000-488d8fff : reserved",        # nested: not nomap
           "KX-IOMEM 50008000-7fffffff : System RAM"]
    out += [f"KX-IOMEM {s:08x}-{e - 1:08x} : reserved" for s, e in iomem_reserved]
    if resmem and hole:
        reg = (hole[0].to_bytes(8, "big") + (hole[1] - hole[0]).to_bytes(8, "big")).hex()
        out.append(f"KX-RESMEM name=kx-nomap@{hole[0]:x} reg={reg} nomap=yes")
    out += ["KX-PTDUMP-BEGIN", "KX-PT 0x0000000000000000-0xffff5e0000000000   16T PGD"]
    out += [ptdump_line(s + OFFSET, e + OFFSET) for s, e in linear]
    out += ["KX-PT 0xffff5e4700000000-0xffff5e8000000000  228G PUD",
            "KX-PT ---[ Linear Mapping end ]---", "KX-PTDUMP-END", "KX-PTWALK-LIVE gen=0"]
    return out


def lines(linear, efi="no", **kw):
    base = reboot_lines(efi=efi)
    at = next(i for i, t in enumerate(base) if t.startswith("KX-EXEC"))
    return base[:at] + guest_lines(linear, **kw) + base[at:]


LIVE = {"va": PAGE_OFFSET, "pa": RAM[0], "level": 3, "ttbr1": 0x100004053F000, "tcr": 0,
        "pc": 0xFFFFC942586E7960, "in_routine": False}
SAMPLE = {"pc": PC, "el": 1, "sctlr": ON, "offset": 108, "ttbr0": 0x4A400000,
          "ttbr1": 0x4A404000, "tcr": 0, "walk_s": 0.4}


def walk(which, runs, granule=4096):
    reg = armpt.Regime(which=which, shift=granule.bit_length() - 1, ia_bits=48, lpa=False)
    return Walk(which=which, ttbr=0x4A400000, base=0x4A400000, regime=reg,
                tables=[(0, 0x4A400000), (1, 0x4A401000), (2, 0x4A402000), (3, 0x4A403000)],
                runs=runs)


def copy_of(pa_ranges, size=4096, level=3, writable=True, executable=False):
    return [Run(s + OFFSET, s, size, (e - s) // size, level, writable, executable, False)
            for s, e in pa_ranges]


IDMAP = [Run(PC & ~0xFFF, PC & ~0xFFF, 4096, 1, 3, False, True, False)]
GOOD_COPY = [(RAM[0], HOLE[0]), (HOLE[1], RAM[1])]


def judge(copy=GOOD_COPY, idmap=IDMAP, linear=GOOD_COPY, config="4k-48", profile="dt-el2",
          live=LIVE, sample=SAMPLE, added=(HOLE,), granule=4096, copy_runs=None, **kw):
    walks = {"ttbr1": walk("ttbr1", copy_runs or copy_of(copy, granule), granule),
             "ttbr0": walk("ttbr0", idmap, granule)}
    expect = {**reboot_expect(), "nomap_added": list(added)}
    c = ctx("ptwalk", profile=profile, config=config)
    return ptwalk.judge(boot(*lines(linear, efi=c.efi, **kw)), c, expect, live, sample, walks)


def test_passes_on_a_copy_of_the_linear_map_less_the_hole():
    v = judge()
    assert v.passed, v.reasons
    assert v.evidence["walks"]["ttbr1"]["table_pages"] == {"L0": 1, "L1": 1, "L2": 1, "L3": 1}
    assert v.evidence["walks"]["ttbr1"]["leaves"] == {"L3 4K": (0x80000000 - 0x40000000
                                                               - 0x3000) // 4096}
    assert v.evidence["nomap"] == ["0x50005000-0x50008000"]
    assert v.evidence["linear_map"]["offset"] == hex(OFFSET)
    assert v.metrics["table_pages_total"] == 8


def test_fails_when_the_copy_maps_a_nomap_byte():
    v = judge(copy=[RAM])
    assert not v.passed
    assert any("TTBR1 maps nomap bytes, first 0x50005000-0x50008000" in r for r in v.reasons)
    assert "0x50005000" in v.first_bad_line


def test_fails_when_a_64k_copy_maps_the_page_that_holds_the_hole():
    """64k-48 under DT, as the series maps it today: the linear map, rounded
    out to 64K pages, maps the page of the 12 KiB region, and so does the copy."""
    page = (0x50000000, 0x50010000)
    linear = [RAM]     # map_mem() rounds the RAM around the hole out to pages
    v = judge(copy=linear, linear=linear, config="64k-48", granule=65536)
    assert not v.passed
    assert any(f"holding nomap bytes {HOLE[0]:#x}-{HOLE[1]:#x}" in r for r in v.reasons)
    assert v.evidence["nomap_pages"] == [f"{page[0]:#x}-{page[1]:#x}"]
    # Leaving that one 64K page out is what passes.
    good = [(RAM[0], page[0]), (page[1], RAM[1])]
    assert judge(copy=good, linear=linear, config="64k-48", granule=65536).passed


def test_fails_when_a_linear_map_page_is_missing_from_the_copy():
    v = judge(copy=[(RAM[0], 0x40001000), (0x40002000, HOLE[0]), (HOLE[1], RAM[1])])
    assert not v.passed
    assert any("lacks 4096 bytes" in r and "0x40001000-0x40002000" in r for r in v.reasons)


def test_fails_when_the_copy_maps_an_extra_page():
    v = judge(copy=GOOD_COPY + [(RAM[1], RAM[1] + 0x1000)])
    assert not v.passed
    assert any("maps 4096 bytes" in r and "0x80000000-0x80001000" in r for r in v.reasons)


def test_fails_on_a_writable_and_executable_leaf_in_either_table():
    v = judge(idmap=[dataclasses.replace(IDMAP[0], writable=True)])
    assert not v.passed
    assert any(r.startswith("TTBR0 maps 1 leaves writable and executable") for r in v.reasons)
    runs = copy_of(GOOD_COPY)
    runs[0] = dataclasses.replace(runs[0], executable=True)
    v = judge(copy_runs=runs)
    assert not v.passed and any(r.startswith("TTBR1 maps") for r in v.reasons)


def test_fails_when_a_leaf_maps_at_another_offset():
    runs = copy_of(GOOD_COPY)
    runs.append(dataclasses.replace(runs.pop(), va=runs[-1].va + 0x1000))
    v = judge(copy_runs=runs)
    assert not v.passed
    assert any("do not map PA = VA - " + hex(OFFSET) in r for r in v.reasons)
    # The same copy against a live map at another offset fails too.
    assert not judge(live={**LIVE, "pa": RAM[0] + 0x200000}).passed


def test_fails_unless_ttbr0_maps_the_sampled_pc_at_its_own_address():
    shifted = [dataclasses.replace(IDMAP[0], va=IDMAP[0].va + 0x1000)]
    v = judge(idmap=shifted)
    assert not v.passed and any("sampled PC" in r for r in v.reasons)


def test_uefi_firmware_regions_are_holes_too():
    fw = (0x7FDF0000, 0x7FDFB000)
    copy = [(RAM[0], fw[0]), (fw[1], RAM[1])]
    assert judge(copy=copy, linear=copy, profile="uefi", added=(), hole=None,
                 iomem_reserved=[fw]).passed
    v = judge(copy=[RAM], linear=copy, profile="uefi", added=(), hole=None,
              iomem_reserved=[fw])
    assert not v.passed and any("nomap bytes" in r for r in v.reasons)


@pytest.mark.parametrize("change, needle", [
    (dict(resmem=False), "device tree lacks the no-map region"),
    (dict(profile="uefi", added=(), hole=None), "no nomap region"),
    (dict(live=None), "live TTBR1"),
    (dict(live={**LIVE, "in_routine": True}), "live translation stopped in the relocation"),
    (dict(sample=None), "no sample stopped inside the relocation"),
    (dict(sample={**SAMPLE, "sctlr": 0}), "without the MMU"),
    (dict(sample={**SAMPLE, "ttbr1": LIVE["ttbr1"]}), "live kernel's, not a copy"),
])
def test_fails_without_the_evidence_it_needs(change, needle):
    v = judge(**change)
    assert not v.passed
    assert any(needle in r for r in v.reasons), v.reasons


def test_fails_on_a_walk_that_did_not_finish_or_a_failed_reboot():
    v = judge(linear=[])
    assert not v.passed and any("no mapped linear map" in r for r in v.reasons)
    walks = {"ttbr1": walk("ttbr1", copy_of(GOOD_COPY)), "ttbr0": walk("ttbr0", IDMAP)}
    walks["ttbr1"].truncated = True
    walks["ttbr0"].errors.append("cannot read the level 3 table at PA 0x1000")
    expect = {**reboot_expect(), "nomap_added": [HOLE]}
    v = ptwalk.judge(boot(*lines(GOOD_COPY)), ctx("ptwalk"), expect, LIVE, SAMPLE, walks)
    assert not v.passed and len([r for r in v.reasons if "walk" in r]) == 2
    bad = [t.replace("token=0123456789abcdef", "token=ffff") if t.startswith("KX-GEN") else t
           for t in lines(GOOD_COPY)]
    v = ptwalk.judge(boot(*bad), ctx("ptwalk"), expect, LIVE, SAMPLE,
                     {"ttbr1": walk("ttbr1", copy_of(GOOD_COPY)), "ttbr0": walk("ttbr0", IDMAP)})
    assert not v.passed and any("token" in r for r in v.reasons)


def test_walked_tables_that_map_a_nomap_page_fail_the_judge():
    """End to end on table memory: a 64K copy as the series builds it today,
    with a 512 MiB block where the hole is, walked and judged."""
    t = tcr(16, 48)
    reg = armpt.regime(t, "ttbr1")
    mem = Memory(65536)
    va = PAGE_OFFSET & ~((1 << 29) - 1)
    offset = va - RAM[0]
    top = build(mem, reg, [(va + i * (512 << 20), 2, (RAM[0] + i * (512 << 20)) | BLOCK | AF
                            | PXN) for i in range(2)])
    copy = armpt.walk(mem.read, top, t, "ttbr1")
    assert copy.leaf_counts() == {(2, 512 << 20): 2}
    mem0 = Memory(65536, at=0x4B000000)
    idmap = armpt.walk(mem0.read, build(mem0, armpt.regime(t, "ttbr0"),
                                        [(PC & ~0xFFFF, 3, PC & ~0xFFFF | PAGE | AF | 1 << 7)]),
                       t, "ttbr0")
    base = reboot_lines()
    at = next(i for i, x in enumerate(base) if x.startswith("KX-EXEC"))
    dump = [x.replace(f"{OFFSET + RAM[0]:#018x}", f"{va:#018x}").replace(
        f"{OFFSET + RAM[1]:#018x}", f"{va + RAM[1] - RAM[0]:#018x}")
        for x in guest_lines([RAM])]
    expect = {**reboot_expect(), "nomap_added": [HOLE]}
    v = ptwalk.judge(boot(*base[:at], *dump, *base[at:]), ctx("ptwalk", config="64k-48"),
                     expect, {**LIVE, "va": va, "pa": RAM[0]}, SAMPLE,
                     {"ttbr1": copy, "ttbr0": idmap})
    assert not v.passed, v.reasons
    assert [r for r in v.reasons if "nomap" in r], v.reasons
    assert v.evidence["linear_map"]["offset"] == hex(offset)


def test_the_added_hole_lines_up_with_no_block_and_no_large_page():
    start, end = ptwalk.nomap_hole(0x48A00000, 1024)
    assert end - start == 12 << 10 and start % 4096 == 0
    for unit in (16 << 10, 64 << 10, 2 << 20, 32 << 20, 512 << 20, 1 << 30):
        assert start % unit, unit     # so its 16K or 64K page holds RAM too
    assert start >= 0x48A00000 + (64 << 20)
    with pytest.raises(Exception, match="no room"):
        ptwalk.nomap_hole(0x48A00000, 256)


def test_the_copy_starts_after_the_routines_last_ttbr1_write():
    insns = [(0, 0, "ldr", "x28, [x0]"), (8, 0, "msr", "ttbr1_el1, x1"),
             (20, 0, "msr", "ttbr1_el1, x1"), (24, 0, "isb", "")]
    assert ptwalk.ttbr1_switch_end(insns) == 24
    assert ptwalk.ttbr1_switch_end(insns[:1]) == 0


class StopsInTurn:
    """A gdbstub whose guest, at each interrupt, is found at the next of
    STOPS: (EL, TTBR1_EL1)."""

    def __init__(self, stops):
        self.stops, self.at, self.read_at = list(stops), -1, None

    def interrupt(self):
        self.at = min(self.at + 1, len(self.stops) - 1)

    def cont(self):
        pass

    def reg(self, name):
        el, ttbr1 = self.stops[self.at]
        return {"pc": 0xFFFF800080000000, "cpsr": el << 2, "TTBR1_EL1": ttbr1,
                "TCR_EL1": 0}.get(name, 0)

    def mem(self, addr, n):
        return bytes(n)

    def physical(self):
        stub = self

        class Reader:
            def __enter__(self):
                stub.read_at = stub.at
                return None

            def __exit__(self, *exc):
                return False
        return Reader()


class Booted:
    def __init__(self, texts):
        self.result = type("R", (), {"lines": [type("L", (), {"text": t})() for t in texts]})()

    def wait_for(self, prefix):
        return next((ln for ln in self.result.lines if ln.text.startswith(prefix)), None)


@pytest.mark.parametrize("kpti, translated_at", [("yes", 2), ("no", 1)])
def test_live_translation_waits_for_the_kernel_tables(monkeypatch, kpti, translated_at):
    """At EL0, and under KPTI in the entry trampoline (TTBR1 with the user
    ASID flag), TTBR1 does not hold the kernel's tables: the live translation
    is taken at the first stop in the kernel proper."""
    monkeypatch.setattr(armpt, "translate", lambda read, ttbr1, tcr, va: (RAM[0], 3))
    kernel = 0x0100_0000_4061_0000
    stub = StopsInTurn([(0, kernel | ptwalk.USER_ASID_FLAG),
                        (1, kernel | ptwalk.USER_ASID_FLAG), (1, kernel)])
    texts = [f"KX-FEATURES gen=0 role=main vhe=no kvm=none kpti={kpti} pac=no va_bits=48"]
    texts += guest_lines(GOOD_COPY)
    live = ptwalk.live_linear_map(Booted(texts), stub, b"")
    assert stub.read_at == translated_at
    assert live["el"] == 1 and live["pa"] == RAM[0] and live["va"] == PAGE_OFFSET
