"""ptwalk: what the relocation page tables map, read from outside the kernel.

A kexec reboot (kexec_load) with QEMU's gdbstub attached. After `kexec -l`
the guest prints /proc/iomem, its device tree's reserved-memory nodes and
the linear map's section of kernel_page_tables, then pauses; the host
stops it there once to translate the linear map's first address through the
live TTBR1 (the linear map's VA-to-PA offset, which KASLR changes at every
boot). From KX-EXEC on, the host samples as mmu-state does until a sample
lands inside arm64_relocate_new_kernel after its switch to the copy of the
linear map and, still stopped there, walks the TTBR1 and TTBR0 tables by
physical reads (QEMU's Qqemu.PhyMemMode). A kernel that runs at EL2 under
VHE copies there: its TTBR0, TTBR1 and TCR are then EL2's, which its
*_EL1 accesses reach.

Holes: under the DT profiles the scenario adds a 12 KiB reserved-memory
no-map region at an address aligned to no block and, with 16K and 64K
pages, to no page; under uefi the firmware's runtime regions are the holes.
The nomap regions are /proc/iomem's top-level "reserved" entries (arm64's
request_standard_resources() names exactly the memblock nomap regions so,
shrunk to whole pages) and the region the scenario added, at its bytes.

Pass (judge): the reboot's own evidence holds, and
  1. the TTBR1 copy maps exactly the live linear map's physical pages less
     those (of the kernel's PAGE_SIZE) that hold any byte of a nomap region;
  2. no byte of a nomap region is mapped by TTBR1 or TTBR0;
  3. every TTBR1 leaf maps PA = VA - the live linear map's offset;
  4. nothing in TTBR1 or TTBR0 is writable and executable at EL1;
  5. TTBR0 maps the page of the sampled PC at its own address.
"""
import time

from .. import armpt, dtb, machine
from ..gdbstub import Stub
from ..ranges import intersect, normalize, outward, show, subtract, total
from ..util import KxError
from . import common, kexec_reboot, mmu_state, ptdump

RAM_BASE = 0x40000000           # QEMU virt
# The added hole: 12 KiB, 20 KiB past a 64 MiB boundary. 4 KiB-aligned (the
# firmware granule) but not 16 KiB-aligned, so no 2M/32M/512M/1G block and
# no 16K or 64K page lines up with it; 64 MiB past the end of the initrd, so
# clear of QEMU's kernel, initrd and device tree (which follows the initrd).
NOMAP_ALIGN, NOMAP_OFFSET, NOMAP_SIZE = 64 << 20, 0x5000, 0x3000
LIVE_STOP_TRIES = 100
# TTBR1_EL1 bit 48, the user half of a KPTI ASID pair: set from the
# trampoline's switch to its own tables until the switch back to the kernel's.
USER_ASID_FLAG = 1 << 48
MAX_TABLES = 1 << 16            # a page-granular 4K copy of 128 GiB
# Walking costs host time while the guest is stopped: about 2 MiB of tables
# per GiB of a page-granular 4K copy.
WALK_S_PER_GIB = 4
# Table pages the relocation may take at most, where it is known: with
# blocks a 4K/48-bit copy needs a handful whatever the RAM, where a
# page-granular copy needs 2 MiB of tables per GiB.
TABLE_PAGES_LIMIT = {"4k-48": 32}


def nomap_hole(initrd_end, mem_mib):
    """[start, end) of the region to add, for a guest of MEM_MIB."""
    start = -(-initrd_end // NOMAP_ALIGN) * NOMAP_ALIGN + NOMAP_ALIGN + NOMAP_OFFSET
    if start + NOMAP_SIZE > RAM_BASE + (mem_mib << 20):
        raise KxError(f"no room for the no-map region above the initrd in {mem_mib} MiB")
    return start, start + NOMAP_SIZE


def add_nomap_hole(ctx, spec, inset=0):
    """Boot SPEC with QEMU's tree plus the no-map hole, INSET bytes in from
    each end; (start, end) of the region added."""
    path = dtb.dump(spec, ctx.workdir / "qemu.dtb")
    start, end = nomap_hole(dtb.initrd_end(path), ctx.mem)
    start, end = start + inset, end - inset
    dtb.add_nomap(path, start, end - start)
    spec.dtb = path
    return start, end


def setup(ctx):
    """The reboot's setup; under DT, QEMU's tree with the hole added."""
    image, spec, expect = kexec_reboot.setup(ctx)
    expect["nomap_added"] = [add_nomap_hole(ctx, spec)] if ctx.profile != "uefi" else []
    return image, spec, expect


def ttbr1_switch_end(insns):
    """Offset just past the routine's last write of TTBR1 (its switch to the
    copy), or 0 if it writes none: only samples from there on see the copy."""
    offs = [off for off, _, mnem, ops in insns if mnem == "msr" and
            ops.lower().startswith("ttbr1_el1")]
    return offs[-1] + 4 if offs else 0


def run(ctx):
    image, spec, expect = setup(ctx)
    vmlinux = image.parents[3] / "vmlinux"
    insns = mmu_state.disassemble(vmlinux)
    code, _ = mmu_state.routine_code(vmlinux)
    spec.gdb_port = mmu_state.free_port()
    timeout = ctx.boot_timeout() + WALK_S_PER_GIB * max(1, ctx.mem >> 10)
    with machine.Machine(spec, ctx.log, timeout) as m:
        stub = Stub(spec.gdb_port)
        try:
            stub.cont()
            live = live_linear_map(m, stub, code)
            sample, walks = stop_in_copy(m, stub, code, ttbr1_switch_end(insns),
                                         mmu_state.mmu_off_offset(vmlinux))
            m.wait_exit()
        finally:
            stub.close()
    # The walks are read from guest memory, not printed: this run cannot be
    # re-judged from its log (./kx judge says so).
    ctx.judge_args = None
    return judge(m.result, ctx, expect, live, sample, walks)


def live_linear_map(m, stub, code):
    """At KX-PTWALK-LIVE: the linear map's first address, translated through
    the live TTBR1 (the kernel's own tables)."""
    if m.wait_for("KX-PTWALK-LIVE") is None:
        return None
    mapped = linear_map([ln.text for ln in m.result.lines])
    # Under KPTI, at EL0 and in the entry trampoline, TTBR1 holds the
    # trampoline's tables, which map no linear map: let the guest run on
    # until it is stopped in the kernel proper (it is idle there, waiting,
    # nearly all the time).
    kpti = any("kpti=yes" in ln.text for ln in m.result.lines
               if "KX-FEATURES" in ln.text)
    stub.interrupt()
    st = mmu_state.read_state(stub)
    regs = mmu_state.translation_regs(st)
    ttbr1 = stub.reg(regs["ttbr1"])
    for _ in range(LIVE_STOP_TRIES):
        if st["el"] > 0 and not (kpti and ttbr1 & USER_ASID_FLAG):
            break
        stub.cont()
        time.sleep(0.01)
        stub.interrupt()
        st = mmu_state.read_state(stub)
        regs = mmu_state.translation_regs(st)
        ttbr1 = stub.reg(regs["ttbr1"])
    try:
        tcr = stub.reg(regs["tcr"])
        hit = None
        if mapped:
            with stub.physical() as read:
                hit = armpt.translate(read, ttbr1, tcr, mapped[0][0])
    finally:
        stub.cont()
    return {"va": mapped[0][0] if mapped else None, "pa": hit[0] if hit else None,
            "level": hit[1] if hit else None, "ttbr1": ttbr1, "tcr": tcr, "pc": st["pc"],
            "el": st["el"],
            "in_routine": mmu_state.match_offset(code, st["window"]) is not None}


def stop_in_copy(m, stub, code, after, before=None):
    """Sample from KX-EXEC until one sample is inside the routine at or past
    AFTER and before BEFORE (the MMU-off tail, if any); walk both tables
    there. (sample or None, {which: armpt.Walk})."""
    if m.wait_for("KX-EXEC") is None:
        return None, {}
    deadline, inside = time.monotonic() + mmu_state.SAMPLE_WINDOW_S, False
    while time.monotonic() < deadline:
        stub.interrupt()
        st = mmu_state.read_state(stub)
        off = mmu_state.match_offset(code, st.pop("window"))
        if off is not None and off < after:
            # Inside, before the switch: a busy host may sample too seldom to
            # land in the copy, so stop at the instruction after the switch.
            st, off = stop_at(stub, code, st["pc"] - off + after)
        if off is not None and off >= after and (before is None or off < before):
            try:
                return walk_here(stub, {**st, "offset": off})
            finally:
                stub.cont()
        if off is None and inside:
            break   # the routine ended between two samples
        inside = off is not None
        stub.cont()
        time.sleep(0.003)
    stub.cont()
    return None, {}


def stop_at(stub, code, addr):
    """Run to ADDR (a hardware breakpoint); the state there and its offset
    in the routine."""
    mmu_state.run_to(stub, addr)
    st = mmu_state.read_state(stub)
    return st, mmu_state.match_offset(code, st.pop("window"))


def walk_here(stub, st):
    """The sample's translation registers (EL2's under VHE), and (with the
    MMU on, at EL1 or at EL2 under VHE) the tables they point at."""
    regs = mmu_state.translation_regs(st)
    st.update({k: stub.reg(name) for k, name in regs.items()})
    in_kernel_regime = st["el"] == 1 or regs["tcr"] == "TCR_EL2"
    if not in_kernel_regime or not st["sctlr"] & mmu_state.SCTLR_M:
        return st, {}
    t0 = time.monotonic()
    with stub.physical() as read:
        walks = {which: armpt.walk(read, st[which], st["tcr"], which, MAX_TABLES)
                 for which in ("ttbr1", "ttbr0")}
    st["walk_s"] = round(time.monotonic() - t0, 3)
    return st, walks


def linear_map(texts):
    """Mapped [start, end) VA ranges of the dump's linear map: what it lists
    before its "Linear Mapping end" marker (v5.10 prints no start marker);
    empty unless the end marker came."""
    out, inside = [], False
    for text in texts:
        if text == "KX-PTDUMP-BEGIN":
            out, inside = [], True
        elif inside and text.startswith("KX-PT ") and "Linear Mapping end" in text:
            return normalize(out)
        elif inside:
            m = ptdump.LINE.match(text)
            if m and m.group(4).strip():    # unmapped ranges carry no attributes
                out.append((int(m.group(1), 16), int(m.group(2), 16)))
    return []


def iomem_nomap(texts):
    """/proc/iomem's top-level "reserved" ranges: the memblock nomap regions."""
    out = []
    for text in texts:
        if not text.startswith("KX-IOMEM "):
            continue
        entry = text[len("KX-IOMEM "):]
        if not entry[:1].isspace() and entry.split(" : ", 1)[-1].strip() == "reserved":
            out.append(kexec_reboot.span(entry.split(" : ")[0].strip()))
    return out


def reserved_memory(texts):
    """The guest's /proc/device-tree/reserved-memory nodes (2+2 cells)."""
    out = []
    for text in texts:
        if text.startswith("KX-RESMEM "):
            f = common.fields(text)
            reg = bytes.fromhex(f.get("reg", ""))
            if len(reg) == 16:
                start, size = int.from_bytes(reg[:8], "big"), int.from_bytes(reg[8:], "big")
                out.append({"name": f["name"], "range": (start, start + size),
                            "nomap": f.get("nomap") == "yes"})
    return out


def first(ranges):
    return show(ranges[0]) if ranges else None


def describe_run(r):
    return (f"VA {r.va:#x}-{r.end:#x} -> PA {r.pa:#x}-{r.pa_end:#x} "
            f"({r.count} x {armpt.size_name(r.size)} at level {r.level}, "
            f"{'RW' if r.writable else 'RO'} {'X' if r.executable else 'NX'})")


ADDRESSES = ("va", "pa", "pc", "sctlr", "ttbr0", "ttbr1", "tcr")


def hexed(record):
    """RECORD with its addresses and registers in hex, as people read them."""
    if record is None:
        return None
    return {k: hex(x) if k in ADDRESSES and x is not None else x for k, x in record.items()}


def walk_evidence(w):
    return {"ttbr": hex(w.ttbr), "base": hex(w.base), "granule": w.regime.granule,
            "ia_bits": w.regime.ia_bits, "start_level": w.regime.start_level,
            "tables": [{"level": lvl, "pa": hex(pa)} for lvl, pa in w.tables[:64]],
            "table_pages": {f"L{k}": n for k, n in w.tables_per_level().items()},
            "table_pages_total": len(w.tables),
            "leaves": {f"L{lvl} {armpt.size_name(size)}": n
                       for (lvl, size), n in w.leaf_counts().items()},
            "runs": [describe_run(r) for r in w.runs[:64]], "runs_total": len(w.runs),
            "errors": w.errors, "truncated": w.truncated}


def check_tables(v, ctx, expect, live, sample, walks, texts):
    """Rules 1-5 over the walks; the first offending range goes to the evidence."""
    page = ctx.page_size
    linear = linear_map(texts)
    nomap = normalize(iomem_nomap(texts) + [tuple(r) for r in expect["nomap_added"]])
    nomap_pages = outward(nomap, page)
    offset = live["va"] - live["pa"]
    linear_pa = normalize((s - offset, e - offset) for s, e in linear)
    expected = subtract(linear_pa, nomap_pages)
    t1, t0 = walks["ttbr1"], walks["ttbr0"]
    copy = normalize((r.pa, r.pa_end) for r in t1.runs)
    offences = []

    def rule(ok, reason):
        if not v.require(ok, reason):
            offences.append(reason)
    extra, missing = subtract(copy, expected), subtract(expected, copy)
    held = intersect(extra[:1], nomap_pages)
    rule(not extra, f"the TTBR1 copy maps {total(extra)} bytes the linear map less nomap "
                    f"pages does not; first {first(extra)}"
                    + (f", holding nomap bytes {first(intersect(held, nomap))}" if held else ""))
    rule(not missing, f"the TTBR1 copy lacks {total(missing)} bytes of the linear map less "
                      f"nomap pages; first {first(missing)}")
    for w in (t1, t0):
        hit = intersect(normalize((r.pa, r.pa_end) for r in w.runs), nomap)
        rule(not hit, f"{w.which.upper()} maps nomap bytes, first {first(hit)}")
    skewed = [r for r in t1.runs if r.va - r.pa != offset]
    rule(not skewed, f"{len(skewed)} TTBR1 runs do not map PA = VA - {offset:#x} (the live "
                     f"linear map's offset); first {describe_run(skewed[0]) if skewed else ''}")
    for w in (t1, t0):
        wx = [r for r in w.runs if r.writable and r.executable]
        rule(not wx, f"{w.which.upper()} maps {sum(r.count for r in wx)} leaves writable and "
                     f"executable at EL1; first {describe_run(wx[0]) if wx else ''}")
    pc = sample["pc"]
    rule(any(r.va <= pc < r.end and r.va == r.pa for r in t0.runs),
         f"TTBR0 does not map the page of the sampled PC {pc:#x} at its own address")
    v.evidence.update({
        "nomap": [show(r) for r in nomap], "nomap_pages": [show(r) for r in nomap_pages],
        "linear_map": {"offset": hex(offset), "pa": [show(r) for r in linear_pa[:64]],
                       "bytes": total(linear_pa)},
        "copy_pa": [show(r) for r in copy[:64]], "copy_bytes": total(copy),
        "first_offence": offences[0] if offences else None})
    return offences


def judge(boot, ctx, expect, live, sample, walks):
    v = kexec_reboot.judge(boot, ctx, expect)
    texts = [ln.text for ln in boot.lines]
    v.require(linear_map(texts), "the guest printed no mapped linear map (kernel_page_tables)")
    v.require(any(t.startswith("KX-IOMEM ") for t in texts), "the guest printed no /proc/iomem")
    resmem = reserved_memory(texts)
    for start, end in expect["nomap_added"]:
        v.require(any(r["range"] == (start, end) and r["nomap"] for r in resmem),
                  f"the guest's device tree lacks the no-map region {show((start, end))}")
    v.require(iomem_nomap(texts) or expect["nomap_added"],
              "no nomap region: the holes would go untested")
    if v.require(live and live["pa"] is not None,
                 "the linear map's first address was not translated through the live TTBR1"):
        v.require(not live["in_routine"], "the live translation stopped in the relocation")
    if v.require(sample is not None,
                 "no sample stopped inside the relocation routine past its TTBR1 switch"):
        copy_el, vhe = mmu_state.copy_regime(ctx)
        v.require(sample["el"] == copy_el and bool(sample.get("e2h")) == vhe and
                  sample["sctlr"] & mmu_state.SCTLR_M,
                  f"the relocation ran without the MMU at {mmu_state.regime_name(ctx)}: "
                  f"{mmu_state.describe(sample)}")
        v.require(not live or sample["ttbr1"] != live["ttbr1"],
                  "TTBR1 in the relocation is the live kernel's, not a copy")
    for w in walks.values():
        v.require(not w.errors, f"{w.which.upper()} walk: {'; '.join(w.errors[:3])}")
        v.require(not w.truncated, f"{w.which.upper()} walk stopped after {len(w.tables)} "
                                   "tables")
    offences = []
    if sample and live and live["pa"] is not None and set(walks) == {"ttbr0", "ttbr1"}:
        offences = check_tables(v, ctx, expect, live, sample, walks, texts)
    v.evidence["reserved_memory"] = [{**r, "range": show(r["range"])} for r in resmem]
    v.evidence["nomap_added"] = [show(r) for r in expect["nomap_added"]]
    v.evidence["live"] = hexed(live)
    v.evidence["sample"] = hexed(sample)
    v.evidence["walks"] = {which: walk_evidence(w) for which, w in walks.items()}
    for which, w in walks.items():
        v.metrics[f"table_pages_{which}"] = len(w.tables)
    if walks:
        v.metrics["table_pages_total"] = sum(len(w.tables) for w in walks.values())
        limit = TABLE_PAGES_LIMIT.get(ctx.config)
        v.require(limit is None or v.metrics["table_pages_total"] < limit,
                  f"the relocation tables take {v.metrics['table_pages_total']} pages, "
                  f"not fewer than {limit} (a copy with blocks needs a handful "
                  "whatever the RAM)")
        v.metrics["walk_s"] = sample.get("walk_s") if sample else None
    if not v.passed and v.first_bad_line is None:
        v.first_bad_line = offences[0] if offences else common.first_bad(boot)
    return v
