"""reloc-fault: an exception during the relocation copy parks the CPU where
the host can see it, instead of looping on an unmapped vector.

A kexec reboot runs with QEMU's gdbstub attached, as in mmu-state. Once a
sample is inside the relocation routine, a hardware breakpoint stops it at
copy_page's first load; the host points that load's base register at the
kernel image's own address of the routine, which the copy of the linear map
does not map (the old kernel's vectors are there too), and lets it run. The
load takes a translation fault at EL1 (at EL2 under VHE, which then holds
what follows in its *_EL2 registers). After PARK_WAIT_S the host stops the
guest and reads PC, VBAR_EL1, ESR_EL1, FAR_EL1 and ELR_EL1.
Pass: the PC is in the vector table VBAR_EL1 points at, VBAR_EL1 is the one
in the routine's own page (its physical copy's address plus PARK_OFFSET),
ESR_EL1 says a data abort at the same EL, FAR_EL1 is the injected address
and ELR_EL1 the load. A series without parked vectors fails: VBAR_EL1 still
points into the kernel image, which the copy does not map.
"""
import re
import subprocess
import time

from .. import machine
from ..gdbstub import Stub
from ..util import KxError
from . import common, kexec_reboot, mmu_state

PARK_OFFSET = 0x800         # the vectors' offset in the routine's page
VECTORS_SIZE = 0x800
EC_DABT_CUR = 0x25          # ESR_ELx.EC: data abort taken without a change of EL
PARK_WAIT_S = 0.5
# What the host reads at the park, by QEMU's names (VBAR_EL1 is "VBAR").
PARK_REGS = {"pc": "pc", "cpsr": "cpsr", "vbar_el1": "VBAR", "esr_el1": "ESR_EL1",
             "far_el1": "FAR_EL1", "elr_el1": "ELR_EL1"}
# ... and under VHE, where the kernel's *_EL1 accesses reach EL2's registers
# and its exceptions are taken to EL2: the *_el1 keys hold those.
PARK_REGS_VHE = {**PARK_REGS, "vbar_el1": "VBAR_EL2", "esr_el1": "ESR_EL2",
                 "far_el1": "FAR_EL2", "elr_el1": "ELR_EL2"}


def first_load(vmlinux):
    """(offset, base register) of the routine's first `ldp` from [xN]: the
    first load of copy_page."""
    for off, _, mnemonic, ops in mmu_state.disassemble(vmlinux):
        m = re.search(r"\[(x\d+)\]", ops)
        if mnemonic == "ldp" and m:
            return off, m.group(1)
    raise KxError(f"no ldp from a register in {mmu_state.ROUTINE} of {vmlinux}")


def symbol_address(vmlinux, symbol=mmu_state.ROUTINE):
    """SYMBOL's address in the kernel image mapping."""
    out = subprocess.run(["aarch64-linux-gnu-nm", str(vmlinux)], capture_output=True,
                         text=True).stdout
    for ln in out.splitlines():
        parts = ln.split()
        if len(parts) == 3 and parts[2] == symbol:
            return int(parts[0], 16)
    raise KxError(f"{vmlinux} has no symbol {symbol}")


def inject(m, stub, code, load_off, base_reg, bad_va):
    """Stop at the first load of the copy, point its base at BAD_VA, let
    the fault happen, then read where the CPU is. None if never reached."""
    if m.wait_for("KX-EXEC") is None:
        return None
    deadline = time.monotonic() + mmu_state.SAMPLE_WINDOW_S
    while time.monotonic() < deadline:
        stub.interrupt()
        st = mmu_state.read_state(stub)
        off = mmu_state.match_offset(code, st["window"])
        if off is not None:
            routine = st["pc"] - off
            mmu_state.run_to(stub, routine + load_off)
            stopped_at = stub.reg("pc")
            stub.set_reg(base_reg, bad_va)
            stub.cont()
            time.sleep(PARK_WAIT_S)
            stub.interrupt()
            vhe = mmu_state.read_state(stub).get("e2h")
            regs = {key: stub.reg(name)
                    for key, name in (PARK_REGS_VHE if vhe else PARK_REGS).items()}
            stub.cont()
            return {"routine": routine, "load": stopped_at, "bad_va": bad_va,
                    "base_reg": base_reg, **regs}
        stub.cont()
        time.sleep(0.003)
    return None


def run(ctx):
    image, spec, expect = kexec_reboot.setup(ctx)
    vmlinux = image.parents[3] / "vmlinux"
    code, _ = mmu_state.routine_code(vmlinux)
    load_off, base_reg = first_load(vmlinux)
    bad_va = symbol_address(vmlinux)
    spec.gdb_port = mmu_state.free_port()
    with machine.Machine(spec, ctx.log, ctx.boot_timeout()) as m:
        stub = Stub(spec.gdb_port)
        try:
            stub.cont()
            park = inject(m, stub, code, load_off, base_reg, bad_va)
        finally:
            stub.close()
            m.kill()
    ctx.judge_args = [park]
    return judge(m.result, ctx, park)


def judge(boot, ctx, park):
    v = common.Verdict()
    common.check_boot_line(v, boot, ctx, gen=0)
    execd, _ = common.find(boot, "KX-EXEC", gen=0)
    v.require(execd is not None, "gen 0 never reached kexec -e")
    common.check_kernel_log(v, boot)
    common.check_crash(v, boot)
    if not v.require(park is not None, "no sample stopped inside the relocation routine"):
        v.first_bad_line = common.first_bad(boot)
        return v
    v.evidence["park"] = {k: (hex(x) if isinstance(x, int) else x) for k, x in park.items()}
    # The copy, and so the fault, runs at EL2 under VHE: its registers then.
    el = mmu_state.copy_regime(ctx)[0]
    vbar, pc = park["vbar_el1"], park["pc"]
    v.require(vbar == park["routine"] + PARK_OFFSET,
              f"VBAR_EL{el} {vbar:#x} is not the routine's vectors at "
              f"{park['routine'] + PARK_OFFSET:#x}")
    v.require(vbar <= pc < vbar + VECTORS_SIZE,
              f"PC {pc:#x} is not in the vectors at VBAR_EL{el} {vbar:#x}")
    ec = (park["esr_el1"] >> 26) & 0x3f
    v.require(ec == EC_DABT_CUR, f"ESR_EL{el} {park['esr_el1']:#x}: class {ec:#x}, "
                                 f"expected a data abort at EL{el} ({EC_DABT_CUR:#x})")
    v.require(park["far_el1"] == park["bad_va"],
              f"FAR_EL{el} {park['far_el1']:#x}, expected the injected {park['bad_va']:#x}")
    v.require(park["elr_el1"] == park["load"],
              f"ELR_EL{el} {park['elr_el1']:#x}, expected the load at {park['load']:#x}")
    v.require(((park["cpsr"] >> 2) & 3) == el, f"parked at EL{(park['cpsr'] >> 2) & 3}, "
                                               f"expected EL{el}")
    if not v.passed:
        v.first_bad_line = (f"parked: PC={pc:#x} VBAR_EL{el}={vbar:#x} "
                            f"ESR_EL{el}={park['esr_el1']:#x}")
    return v
