"""mmu-state: is the relocation copy really done with the MMU and caches on?

A kexec reboot runs with QEMU's gdbstub attached. From `kexec -e` on, the
host interrupts the guest every few milliseconds and reads PC, CPSR and
the SCTLR of the exception level it is at. A sample whose code bytes match
the relocation routine (taken from vmlinux) is a copy sample; once one is
seen, hardware breakpoints on the routine's exits (every `br` and `hvc`:
the jump to the new image at EL1, or the call that asks EL2 to make it)
catch the jump.
A sample after the routine's write that turns the MMU off (the last
`msr sctlr_el1`) is a tail sample: the few instructions that start the new
image run with the MMU off by design, so they must show M clear.
Pass: at least three copy samples, every copy sample at EL1 with
SCTLR_EL1.M, C and I set (a VHE kernel, the server variant on cpu max at
EL2, copies at EL2: there SCTLR_EL2.M, C and I, and HCR_EL2.E2H), every tail
sample and the jump with M clear; the reboot's own evidence must hold.
On the base, which relocates with the MMU off (at EL2 under dt-el2), this
fails, and its evidence says what it saw.

The code that runs with the MMU off must be cleaned to the PoC at kexec -e,
not only when it was written at load time (the system may have hibernated
and resumed in between). The guest prints where the kernel's clean-to-PoC
functions are (KX-KSYM: KASLR moves them) and waits a second before
kexec -e; the host sets hardware breakpoints on them and, from KX-EXEC on,
records each call's range (x0, x1), translated through the live TTBR1.
Pass also needs a call, before the copy, covering the routine from its start
to its exit and, when EL2 starts the new image (an HVC from EL1), one
covering the EL2 vectors VBAR_EL2 points at.
"""
import re
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from .. import armpt, evidence, machine
from ..gdbstub import Stub
from ..util import KxError
from . import common, features, kexec_reboot

ROUTINE = "arm64_relocate_new_kernel"
SCTLR_M, SCTLR_C, SCTLR_I = 1 << 0, 1 << 2, 1 << 12
HCR_E2H = 1 << 34
# SCTLR_EL1 out of reset on a little-endian kernel: its RES1 bits (11, 20,
# 22, 28, 29) only. What the routine must leave for the new image.
SCTLR_EL1_RESET = (1 << 11) | (1 << 20) | (1 << 22) | (1 << 28) | (1 << 29)
ALT_ENTRY = struct.Struct("<iiHBB")     # arm64 struct alt_instr, v5.10 and v6.12
SAMPLE_WINDOW_S = 60
# Samples in the copy the verdict needs: one could be luck, three show a
# loop that ran that way.
MIN_COPY_SAMPLES = 3


EXITS = ("br", "hvc")
# The kernel's functions that clean a range to the PoC, and what their
# second argument is. v5.10 takes (start, size): the series calls the first
# at kexec -e, the base its copy of the routine's page with the second.
# v6.12 renamed them and takes (start, end). The guest prints each name
# (KX-KSYM) in this order, va=0 for one the kernel does not have.
CLEANERS = {"__clean_dcache_area_poc": "size", "__flush_dcache_area": "size",
            "dcache_clean_poc": "end", "dcache_clean_inval_poc": "end"}
EL2_VECTORS_SIZE = 0x800    # TRANS_PGD_STUB_VECTORS_SIZE
EXEC_LINE_WAIT_S = 0.5
CALLS_KEPT = 4              # calls of one function recorded from KX-EXEC on


def disassemble(vmlinux, symbol=ROUTINE):
    """[(offset, instruction word, mnemonic, operands)] of SYMBOL in VMLINUX."""
    syms = subprocess.run(["aarch64-linux-gnu-nm", "-n", str(vmlinux)], capture_output=True,
                          text=True).stdout.splitlines()
    addrs = [(int(ln.split()[0], 16), ln.split()[2]) for ln in syms if len(ln.split()) == 3]
    start = next((a for a, n in addrs if n == symbol), None)
    if start is None:
        raise KxError(f"{vmlinux} has no symbol {symbol}")
    end = min(a for a, _ in addrs if a > start)
    dis = subprocess.run(["aarch64-linux-gnu-objdump", "-d", f"--start-address={start:#x}",
                          f"--stop-address={end:#x}", str(vmlinux)],
                         capture_output=True, text=True).stdout
    return [(int(m.group(1), 16) - start, int(m.group(2), 16), m.group(3), m.group(4).strip())
            for m in re.finditer(r"^\s*([0-9a-f]+):\s+([0-9a-f]{8})\s+(\S+)(.*)$", dis, re.M)]


def routine_code(vmlinux, symbol=ROUTINE):
    """(bytes up to its last exit, offsets of the exits) of SYMBOL, from
    VMLINUX. The vectors past the exits are left out: their runs of NOPs
    also match NOP padding anywhere in a kernel (the server config has
    many), which would pass for a sample in the routine."""
    insns = disassemble(vmlinux, symbol)
    exits = [off for off, _, mnemonic, _ in insns if mnemonic in EXITS]
    if not insns or not exits:
        raise KxError(f"cannot disassemble {symbol} in {vmlinux}")
    code = b"".join(word.to_bytes(4, "little") for off, word, _, _ in insns
                    if off <= exits[-1])
    return code, exits


def mmu_off_offset(vmlinux, symbol=ROUTINE):
    """Offset of the instruction after SYMBOL's last SCTLR_EL1 write, or None
    if it has none (the base turns its MMU off before the routine)."""
    writes = [off for off, _, mnemonic, ops in disassemble(vmlinux, symbol)
              if mnemonic == "msr" and ops.split(",")[0].strip() == "sctlr_el1"]
    return writes[-1] + 4 if writes else None


# Where a kernel defines its cpucap numbers: v5.10 in its source, v6.12
# generates them into the build directory from arch/arm64/tools/cpucaps.
CPUCAP_HEADERS = ("arch/arm64/include/asm/cpucaps.h",
                  "arch/arm64/include/generated/asm/cpucap-defs.h")


def cpucap(vmlinux, name):
    """The number of cpucap NAME of the kernel VMLINUX was built as."""
    build = Path(vmlinux).parent
    for path in [build.parent / h for h in CPUCAP_HEADERS] + [build / h for h in CPUCAP_HEADERS]:
        m = path.exists() and re.search(rf"^#define\s+{name}\s+(\d+)", path.read_text(), re.M)
        if m:
            return int(m.group(1))
    raise KxError(f"the kernel of {vmlinux} has no cpucap {name}")


def alternatives(vmlinux, replacements=None):
    """[(address patched, cpucap)] of VMLINUX's .altinstructions. Into the
    list REPLACEMENTS, if given, the (start, end) of each replacement
    sequence: code that is copied over the patched address, never run where
    it stands (v6.12 places it in the patched code's own section)."""
    heads = subprocess.run(["aarch64-linux-gnu-objdump", "-h", str(vmlinux)],
                           capture_output=True, text=True).stdout
    m = re.search(r"\.altinstructions\s+[0-9a-f]+\s+([0-9a-f]+)", heads)
    if not m:
        raise KxError(f"{vmlinux} has no .altinstructions")
    vma = int(m.group(1), 16)
    with tempfile.NamedTemporaryFile() as out:
        subprocess.run(["aarch64-linux-gnu-objcopy", "-O", "binary",
                        "--only-section=.altinstructions", str(vmlinux), out.name], check=True)
        data = Path(out.name).read_bytes()
    sites = []
    for i in range(len(data) // ALT_ENTRY.size):
        orig, alt, cap, _, alt_len = ALT_ENTRY.unpack_from(data, i * ALT_ENTRY.size)
        sites.append((vma + i * ALT_ENTRY.size + orig, cap))
        if replacements is not None:    # each offset is from its own field
            start = vma + i * ALT_ENTRY.size + 4 + alt
            replacements.append((start, start + alt_len))
    return sites


def tlbi_sites(vmlinux, symbol=ROUTINE):
    """Each TLBI of SYMBOL, and whether the instructions after it are patched
    under ARM64_WORKAROUND_REPEAT_TLBI (the repeat __tlbi() does on parts
    with that erratum)."""
    start = next(int(ln.split()[0], 16) for ln in subprocess.run(
        ["aarch64-linux-gnu-nm", str(vmlinux)], capture_output=True,
        text=True).stdout.splitlines() if ln.split()[2:] == [symbol])
    cap = cpucap(vmlinux, "ARM64_WORKAROUND_REPEAT_TLBI")
    replacements = []
    patched = {addr for addr, c in alternatives(vmlinux, replacements) if c == cap}
    return [{"offset": off, "op": ops, "repeat_tlbi": start + off + 4 in patched}
            for off, _, mnemonic, ops in disassemble(vmlinux, symbol) if mnemonic == "tlbi"
            and not any(lo <= start + off < hi for lo, hi in replacements)]


def match_offset(code, window):
    """Offset in CODE where the bytes at PC (WINDOW) stand, or None."""
    if not window:
        return None
    for off in range(0, len(code), 4):
        n = min(len(window), len(code) - off)
        if n >= 8 and code[off:off + n] == window[:n]:
            return off
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def regime(el):
    """The SCTLR that governs EL: EL0 runs under EL1's translation regime."""
    return max(el, 1)


def copy_regime(ctx):
    """(EL, VHE) the cell's relocation copies at: a VHE kernel runs at EL2
    and copies there, with HCR_EL2.E2H set; any other copies at EL1, EL2
    parked in the hyp stub."""
    vhe = features.runs_vhe(ctx)
    return (2 if vhe else 1), vhe


def regime_name(ctx):
    """How the judges name where the cell copies: 'EL1', 'EL2 under E2H'."""
    el, vhe = copy_regime(ctx)
    return f"EL{el}" + (" under E2H" if vhe else "")


def translation_regs(st):
    """The gdbstub names of the TTBR0, TTBR1 and TCR that govern a CPU in
    state ST: under VHE (EL2, E2H set) the kernel's *_EL1 accesses reach
    EL2's registers."""
    el = "EL2" if st["el"] == 2 and st.get("e2h") else "EL1"
    return {k: f"{k.upper()}_{el}" for k in ("ttbr0", "ttbr1", "tcr")}


def read_state(stub):
    pc, cpsr = stub.reg("pc"), stub.reg("cpsr")
    el = (cpsr >> 2) & 3
    sctlr = stub.reg({1: "SCTLR", 2: "SCTLR_EL2", 3: "SCTLR_EL3"}[regime(el)])
    st = {"pc": pc, "el": el, "sctlr": sctlr, "window": stub.mem(pc, 32)}
    if el == 2:     # under VHE (E2H) the kernel's *_EL1 accesses reach EL2's
        st["e2h"] = int(bool(stub.reg("HCR_EL2") & HCR_E2H))
    return st


def run_to(stub, addr):
    """Let the guest run until it reaches ADDR (a hardware breakpoint, removed
    once hit); it is left stopped there."""
    stub.hbreak(addr)
    stub.cont()
    stub.wait_stop()
    stub.hbreak(addr, on=False)


def break_on_cleaners(m, stub):
    """At the guest's KX-KSYM lines (it then waits a second before kexec -e):
    a hardware breakpoint on each of CLEANERS. Calls before KX-EXEC (the
    kernel cleans for other reasons too) are let through until it shows.
    Returns ({address: name}, the calls before KX-EXEC, the calls after it
    seen meanwhile)."""
    if m.wait_for(f"KX-KSYM gen=0 name={list(CLEANERS)[-1]} ") is None:
        return {}, [], []
    found = {int(f["va"], 16): f["name"] for ln in m.result.all("KX-KSYM")
             for f in [evidence.parse(ln.text, "KX-KSYM")] if f and int(f["va"], 16)}
    stub.interrupt()
    for va in found:
        stub.hbreak(va)
    stub.cont()
    before, after = [], []
    while m.result.first("KX-EXEC") is None and m.proc.poll() is None:
        if stub.wait_stop(timeout=0.05) is not None:
            # The guest is stopped: what it printed before the call reaches
            # the host's reader within moments.
            seen = m.wait_for("KX-EXEC", timeout=EXEC_LINE_WAIT_S) is not None
            record_call(after if seen else before, stub, found)
    return found, before, after


def clean_call(stub, name, rearm=True):
    """The range a call of NAME, stopped at its breakpoint, cleans: its VA
    (x0), size (x1, or x1 - x0 where x1 is the end) and the PA the kernel's
    live tables map the VA to (EL2's under VHE). The guest is stepped past
    the breakpoint (which would stop it again at once), the breakpoint set
    again if REARM, and let run."""
    pc, va, size = stub.reg("pc"), stub.reg("x0"), stub.reg("x1")
    if CLEANERS.get(name) == "end":
        size -= va
    el = (stub.reg("cpsr") >> 2) & 3
    ttbr1, tcr = stub.reg(f"TTBR1_EL{el}"), stub.reg(f"TCR_EL{el}")
    with stub.physical() as read:
        hit = armpt.translate(read, ttbr1, tcr, va)
    stub.hbreak(pc, on=False)
    stub.step()
    if rearm:
        stub.hbreak(pc)
    stub.cont()
    return {"name": name, "va": va, "size": size, "pa": hit[0] if hit else None}


def record_call(calls, stub, cleaners):
    """Append the call the guest is stopped at to CALLS; a function called
    CALLS_KEPT times (the base cleans every source page with one) is no
    longer watched."""
    pc = stub.reg("pc")
    name = cleaners.get(pc, hex(pc))
    rearm = sum(c["name"] == name for c in calls) + 1 < CALLS_KEPT
    calls.append(clean_call(stub, name, rearm))


def sample(m, stub, code, exits, cleaners=None, cleans=None):
    """Sample from KX-EXEC until an exit is caught, the routine is left, or
    the window closes; record each call of CLEANERS ({address: name}, with
    breakpoints set) meanwhile, after those in CLEANS. The guest is left
    running (a detach would stop it). Returns (samples, jump, cleans)."""
    samples, jump, bps, cleans = [], None, [], list(cleans or [])
    cleaners = cleaners or {}
    if m.wait_for("KX-EXEC") is None:
        return samples, jump, cleans
    deadline = time.monotonic() + SAMPLE_WINDOW_S
    while time.monotonic() < deadline:
        stub.interrupt()
        st = read_state(stub)
        off = match_offset(code, st.pop("window"))
        if st["pc"] in bps:
            jump = st
            break
        if st["pc"] in cleaners and not samples:
            record_call(cleans, stub, cleaners)
            continue
        if off is None and samples:
            break   # the routine ran to its end without a breakpoint
        if off is not None:
            if not samples and "VBAR_EL2" in stub.regs:
                st["vbar_el2"] = stub.reg("VBAR_EL2")
            samples.append({**st, "offset": off})
            if not bps:
                bps = [st["pc"] - off + exit_off for exit_off in exits]
                for bp in bps:
                    stub.hbreak(bp)
        stub.cont()
        time.sleep(0.003)
    for bp in [*bps, *cleaners]:
        stub.hbreak(bp, on=False)
    stub.cont()
    return samples, jump, cleans


def run(ctx):
    image, spec, expect = kexec_reboot.setup(ctx)
    vmlinux = image.parents[3] / "vmlinux"
    code, exits = routine_code(vmlinux)
    mmu_off = mmu_off_offset(vmlinux)
    tlbis = tlbi_sites(vmlinux)
    spec.gdb_port = free_port()
    with machine.Machine(spec, ctx.log, ctx.boot_timeout()) as m:
        stub = Stub(spec.gdb_port)
        try:
            stub.cont()
            cleaners, _, cleans = break_on_cleaners(m, stub)
            samples, jump, cleans = sample(m, stub, code, exits, cleaners, cleans)
            m.wait_exit()
        finally:
            stub.close()
    ctx.judge_args = [expect, samples, jump, mmu_off, tlbis, cleans]
    return judge(m.result, ctx, *ctx.judge_args)


def describe(st):
    s = st["sctlr"]
    return (f"EL{st['el']} SCTLR_EL{regime(st['el'])}={s:#x} M={s & SCTLR_M and 1} "
            f"C={s & SCTLR_C and 1} I={s & SCTLR_I and 1}" +
            (f" E2H={st['e2h']}" if "e2h" in st else ""))


def is_tail(st, mmu_off):
    return mmu_off is not None and st["offset"] >= mmu_off


def covers(cleans, start, end):
    return any(c["pa"] is not None and c["pa"] <= start and end <= c["pa"] + c["size"]
               for c in cleans)


def check_cleans(v, ctx, cleans, copy, jump):
    """What runs with the MMU off was cleaned to the PoC at kexec -e: the
    routine up to its exit and, when it asks EL2 to start the new image,
    the EL2 vectors."""
    shown = ", ".join(f"{c['name']}({c['va']:#x}, {c['size']:#x}) -> "
                      + (f"{c['pa']:#x}" if c["pa"] is not None else "unmapped")
                      for c in cleans) or "none"
    v.evidence["cleans_at_kexec_e"] = shown
    if not copy or not jump:
        return      # no routine or exit to check against: reasons given already
    routine = copy[0]["pc"] - copy[0]["offset"]
    v.require(covers(cleans, routine, jump["pc"] + 4),
              f"the relocation routine {routine:#x}-{jump['pc'] + 4:#x} was not cleaned to "
              f"the PoC between kexec -e and the copy; calls seen: {shown}")
    if jump["el"] == 1 and ctx.expected_el == 2:     # an HVC asks EL2 to jump
        vbar = copy[0].get("vbar_el2")
        v.require(vbar is not None and covers(cleans, vbar, vbar + EL2_VECTORS_SIZE),
                  f"the EL2 vectors at VBAR_EL2 {vbar:#x} were not cleaned to the PoC "
                  f"between kexec -e and the copy; calls seen: {shown}"
                  if vbar is not None else "VBAR_EL2 was not read during the copy")


def judge(boot, ctx, expect, samples, jump, mmu_off, tlbis, cleans):
    """SAMPLES carry their offset in the routine; MMU_OFF is mmu_off_offset(),
    TLBIS tlbi_sites(), CLEANS the clean-to-PoC calls from kexec -e on."""
    v = kexec_reboot.judge(boot, ctx, expect)
    copy = [st for st in samples if not is_tail(st, mmu_off)]
    tail = [st for st in samples if is_tail(st, mmu_off)]
    copy_el, vhe = copy_regime(ctx)
    where = regime_name(ctx)
    if v.require(len(copy) >= MIN_COPY_SAMPLES,
                 f"{len(copy)} samples stopped inside the relocation routine's copy, "
                 f"fewer than {MIN_COPY_SAMPLES}"):
        bad = [st for st in copy if st["el"] != copy_el or (vhe and not st.get("e2h")) or
               (st["sctlr"] & (SCTLR_M | SCTLR_C | SCTLR_I)) != SCTLR_M | SCTLR_C | SCTLR_I]
        v.require(not bad, f"{len(bad)} of {len(copy)} copy samples lacked {where} with "
                           f"M, C and I set; first: {describe(bad[0]) if bad else ''}")
    v.evidence["copy_at"] = where
    on = [st for st in tail if st["sctlr"] & SCTLR_M]
    v.require(not on, f"{len(on)} of {len(tail)} samples after the MMU-off write "
                      f"still had the MMU on; first: {describe(on[0]) if on else ''}")
    if v.require(jump is not None, "the final jump was not caught"):
        v.require(not jump["sctlr"] & SCTLR_M, f"MMU still on at the jump: {describe(jump)}")
        v.require(jump["sctlr"] == SCTLR_EL1_RESET,
                  f"SCTLR at the jump {jump['sctlr']:#x}, expected the reset value "
                  f"{SCTLR_EL1_RESET:#x}")
    check_cleans(v, ctx, cleans, copy, jump)
    if v.require(tlbis, "the routine invalidates no TLB entry"):
        v.require(all(t["repeat_tlbi"] for t in tlbis),
                  "a TLBI of the routine lacks the ARM64_WORKAROUND_REPEAT_TLBI alternative")
    v.evidence["tlbi"] = tlbis
    v.evidence["copy_samples"] = [{**st, "sctlr": hex(st["sctlr"]), "pc": hex(st["pc"]),
                                   "state": describe(st)} for st in copy]
    v.evidence["tail_samples"] = [{**st, "sctlr": hex(st["sctlr"]), "pc": hex(st["pc"]),
                                   "state": describe(st)} for st in tail]
    v.evidence["mmu_off_offset"] = mmu_off
    v.evidence["jump"] = {**jump, "sctlr": hex(jump["sctlr"]), "pc": hex(jump["pc"]),
                          "state": describe(jump)} if jump else None
    v.metrics["copy_samples"] = len(copy)
    if not v.passed and v.first_bad_line is None:
        v.first_bad_line = (f"copy sample: {describe(copy[0])}" if copy
                            else common.first_bad(boot))
    return v
