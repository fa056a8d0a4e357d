"""The kexec matrix of the series: every scenario that kexecs, on every
config under every profile, with a 32 MiB and a 256 MiB payload and with
four CPUs (design.md section 6), ptwalk on every config under dt-el2 and
uefi, crashkernel=,high/,low kdump, bad crashkernel= values and a shrunk
crash kernel region, and the server build variant with VHE, KVM, KPTI,
pointer authentication and debug_pagealloc, and 64k-52 without LVA; paths
operators hit and the debug build variant (KASAN, kmemleak, lockdep, fault
injection).

It is too large for every `make check`, so make check runs a sample that
rotates: cell i is in the sample of seed s when (i + s) % stride == 0. The
seed is a counter kept in the cache and advanced once per sample, so
consecutive runs shift the sample by one cell and `stride` runs cover the
whole matrix; KX_MATRIX_SEED fixes it to reproduce a run. `./kx matrix
--all` runs every cell.

The debug cells rotate apart, by config: a sample holds those of one
debug config only (4k-48 on even seeds, 64k-48 on odd ones), so that a
run builds one of the two KASAN kernels (about 11 min each from cold);
2 x DEBUG_STRIDE runs cover them all.
"""
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import runner
from .scenarios import features, hibernate, kdump, kexec_reboot
from .util import CACHE, REPO

CONFIGS = ("4k-48", "4k-39", "16k-47", "64k-48", "64k-52")
PROFILES = ("dt-el1", "dt-el2", "uefi")
SCENARIOS = ("kexec-reboot", "kexec-file", "kexec-chain", "kdump", "mmu-state", "reloc-fault",
             "crash-protect", "hibernate")
PTWALK_PROFILES = ("dt-el2", "uefi")
# kdump with the crash kernel region split above and below 4 GiB,
# through kexec_load() and, under dt-el2, kexec_file_load().
HIGH_LOW = "crashkernel=512M,high crashkernel=128M,low"
HIGH_LOW_PROFILES = ("dt-el2", "uefi")
BIG_PAYLOAD_MIB = 256
STRIDE = 10
SEED_FILE = CACHE / "matrix-seed"
# Cells of these scenarios wait for a kernel change. They run, and are
# expected to fail until it lands; one that passes is reported, so that its
# entry here is deleted and the cells count from then on.
# (For a judge written before the kernel patch it checks: its cells run from
# the start, and the day they pass says the patch is in.)
PENDING = {}


@dataclass(frozen=True)
class Cell:
    scenario: str
    config: str
    profile: str
    payload_mib: int = 32
    smp: int = 1
    kernel: str = "series"
    append: str = ""
    cpu: str = ""       # QEMU cpu; "" for the config's default
    variant: str = ""   # build variant, e.g. server
    mem: int = 0        # guest RAM in MiB; 0 for the scenario's default

    @property
    def pending(self):
        """Why this cell is expected to fail for now, or None."""
        return PENDING.get(self.scenario)

    def args(self):
        args = [self.scenario, "--kernel", self.kernel, "--config", self.config,
                "--profile", self.profile]
        if self.payload_mib != 32:
            args += ["--payload-mib", str(self.payload_mib)]
        if self.smp != 1:
            args += ["--smp", str(self.smp)]
        if self.append:
            args += ["--append", self.append]
        if self.cpu:
            args += ["--cpu", self.cpu]
        if self.variant:
            args += ["--variant", self.variant]
        if self.mem:
            args += ["--mem", str(self.mem)]
        return args

    def __str__(self):
        extra = "".join([f"-{self.payload_mib}m" if self.payload_mib != 32 else "",
                         f"-smp{self.smp}" if self.smp != 1 else "",
                         "-" + re.sub(r"[=, ]+", "-", self.append) if self.append else "",
                         f"-{self.cpu}" if self.cpu else "",
                         f"-mem{self.mem}" if self.mem else ""])
        config = self.config + (f"-{self.variant}" if self.variant else "")
        return f"{self.kernel}-{config}-{self.profile}-{self.scenario}{extra}"


def cells():
    """Every cell, in a fixed order (the sample depends on it)."""
    out = []
    for config in CONFIGS:
        for profile in PROFILES:
            out += [Cell(s, config, profile) for s in SCENARIOS]
            out += [Cell(s, config, profile, payload_mib=BIG_PAYLOAD_MIB)
                    for s in ("kexec-reboot", "kexec-file")]
            out += [Cell(s, config, profile, smp=4) for s in ("kexec-reboot", "kdump")]
            if profile in PTWALK_PROFILES:
                out.append(Cell("ptwalk", config, profile))
            if profile in HIGH_LOW_PROFILES:
                out.append(Cell("kdump", config, profile, append=HIGH_LOW))
            if profile == "dt-el2":
                out += [Cell("kdump", config, profile, append=f"{HIGH_LOW} kx.kexec=file"),
                        Cell("bad-crashkernel", config, profile),
                        Cell("crash-shrink", config, profile)]
    return out + server_cells() + odd_path_cells() + kunit_cells() + debug_cells()


# The trans_pgd KUnit suite (a build variant of its own) copies the real
# linear map: 4k-39 also takes the idmap path that must raise T0SZ; 16K and
# 64K pages have other block sizes and no level-1 blocks; it must hold at 8
# and 16 GiB too.
def kunit_cells():
    return [Cell("kunit", c, "dt-el2", mem=m) for c, m in (
        ("4k-48", 1024), ("4k-48", 8192), ("4k-48", 16384), ("4k-39", 1024),
        ("16k-47", 1024), ("64k-48", 16384))]


# The server build variant on the CPUs that exercise each path:
# max gives VHE (the kernel at EL2), pointer authentication, E0PD and LVA;
# cortex-a57 gives KVM without VHE (EL2 owned by the hypervisor) and KPTI
# forced by KASLR. Each scenario that applies, with kpti=1 and with
# debug_pagealloc=on; kx.kvm=1 keeps a KVM guest running across kexec -e.
# 64k-52 (the minimal config) on cortex-a57 runs a 52-bit kernel without LVA.
SERVER_SCENARIOS = ("kexec-reboot", "kexec-file", "kdump", "hibernate", "mmu-state")


def server_cells():
    out = []
    for cpu, profile, append in (("max", "dt-el2", ""), ("max", "uefi", ""),
                                 ("cortex-a57", "dt-el2", ""),
                                 ("max", "dt-el2", "kpti=1"),
                                 ("cortex-a57", "dt-el2", "debug_pagealloc=on")):
        out += [Cell(s, "4k-48", profile, append=append, cpu=cpu, variant="server")
                for s in SERVER_SCENARIOS]
    out += [Cell("kexec-reboot", "4k-48", profile, append=kexec_reboot.KVM_ALIVE, cpu=cpu,
                 variant="server")
            for cpu, profile in (("max", "dt-el2"), ("cortex-a57", "dt-el2"),
                                 ("max", "uefi"))]
    out += [Cell(s, "4k-48", profile, append=append, cpu=cpu, variant="server")
            for s, profile, cpu, append in (
                ("kexec-reboot", "uefi", "cortex-a57", ""),
                ("kdump", "uefi", "cortex-a57", ""),
                ("kexec-reboot", "dt-el1", "cortex-a57", ""),
                ("kexec-reboot", "uefi", "max", "debug_pagealloc=on"),
                ("kexec-chain", "dt-el2", "cortex-a57", "debug_pagealloc=on"))]
    out += [Cell(s, "64k-52", profile, cpu="cortex-a57")
            for profile in ("dt-el2", "uefi") for s in SERVER_SCENARIOS]
    return out


# Paths operators hit: eight CPUs, a 512 MiB initramfs payload
# (byte-exact), kernels run with nokaslr and, kx.kaslr=on, randomized, kdump
# in a kernel that a kexec reboot started, and a kexec reboot of a system
# resumed from hibernation.
ODD_PAYLOAD_MIB = 512


def odd_path_cells():
    out = [Cell("kexec-reboot", "4k-48", p, smp=8) for p in ("dt-el2", "uefi")]
    out += [Cell("kdump", "4k-48", "dt-el2", smp=8)]
    out += [Cell(s, "4k-48", p, payload_mib=ODD_PAYLOAD_MIB)
            for s, p in (("kexec-reboot", "dt-el2"), ("kexec-reboot", "uefi"),
                         ("kexec-file", "dt-el2"))]
    out += [Cell(s, "4k-48", p, append="nokaslr")
            for s, p in (("kexec-reboot", "dt-el2"), ("kexec-reboot", "uefi"),
                         ("kdump", "dt-el2"))]
    out += [Cell(s, "4k-48", "dt-el2", append=features.KASLR_ON)
            for s in ("kexec-reboot", "kexec-file")]
    out += [Cell("kdump", "4k-48", p, append=kdump.KEXEC_FIRST) for p in ("dt-el2", "uefi")]
    out += [Cell("hibernate", "4k-48", p, append=hibernate.THEN_KEXEC) for p in ("dt-el2", "uefi")]
    return out


# The debug build variant: KASAN, kmemleak, lockdep and fault
# injection on 4K and 64K pages, under DT at EL2 and UEFI; the selftests
# there also make every allocation of a load fail in turn.
DEBUG_CONFIGS = ("4k-48", "64k-48")
DEBUG_SCENARIOS = ("kexec-reboot", "kexec-file", "kexec-chain", "kdump", "hibernate",
                   "selftests")


DEBUG_STRIDE = 6


def debug_cells():
    return [Cell(s, c, p, variant="debug") for c in DEBUG_CONFIGS
            for p in ("dt-el2", "uefi") for s in DEBUG_SCENARIOS]


def debug_config(seed):
    """The one debug config whose cells run with SEED."""
    return DEBUG_CONFIGS[seed % len(DEBUG_CONFIGS)]


def sample(seed, stride=STRIDE, all_cells=None):
    """The cells of SEED: every STRIDE-th cell, starting at -SEED mod STRIDE,
    of all but the debug cells; then every DEBUG_STRIDE-th debug cell of
    debug_config(SEED), rotating once per two seeds."""
    all_cells = cells() if all_cells is None else all_cells
    rest = [c for c in all_cells if c.variant != "debug"]
    debug = [c for c in all_cells if c.variant == "debug" and c.config == debug_config(seed)]
    turn = seed // len(DEBUG_CONFIGS)
    return ([c for i, c in enumerate(rest) if (i + seed) % stride == 0]
            + [c for i, c in enumerate(debug) if (i + turn) % DEBUG_STRIDE == 0])


def peek_seed():
    """The seed next_seed() will return, without advancing the counter."""
    if os.environ.get("KX_MATRIX_SEED"):
        return int(os.environ["KX_MATRIX_SEED"])
    try:
        return int(SEED_FILE.read_text())
    except (OSError, ValueError):
        return 0


def next_seed():
    """KX_MATRIX_SEED if set, else the cached counter, advanced for next time."""
    seed = peek_seed()
    if not os.environ.get("KX_MATRIX_SEED"):
        SEED_FILE.parent.mkdir(parents=True, exist_ok=True)
        SEED_FILE.write_text(f"{seed + 1}\n")
    return seed


def kx_run(*args):
    """./kx run ARGS in a process of its own: (exit code, output, result record
    or None)."""
    res = subprocess.run([str(REPO / "kx"), "run", *args], capture_output=True, text=True,
                         cwd=REPO)
    out = res.stdout + res.stderr
    m = re.search(r"result (\S+\.json)\)", out)
    record = json.loads(Path(m.group(1)).read_text()) if m else None
    return res.returncode, out, record


def run_cell(cell):
    """(cell, passed, the one line ./kx run printed)."""
    rc, out, _ = kx_run(*cell.args())
    lines = out.strip().splitlines()
    line = next((ln for ln in lines if ln.split(" ", 1)[0] in runner.STATUSES),
                lines[-1] if lines else "no output")
    return cell, rc == 0, line


def main(run_all=False, seed=None, jobs=2, match=None):
    todo = cells()
    if not run_all:
        seed = next_seed() if seed is None else seed
        todo = sample(seed)
        print(f"kx matrix: seed {seed}, {len(todo)} of {len(cells())} cells "
              f"(KX_MATRIX_SEED={seed} reproduces)", flush=True)
    if match:
        todo = [c for c in todo if match in str(c)]
        print(f"kx matrix: {len(todo)} cells match {match!r}", flush=True)
    failed, expected = [], []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for cell, passed, line in pool.map(run_cell, todo):
            print(f"{cell}: {line}", flush=True)
            if cell.pending and not passed:
                expected.append(cell)
            elif cell.pending:
                print(f"{cell}: passes although pending; delete matrix.PENDING"
                      f"[{cell.scenario!r}] to count it", flush=True)
                failed.append(cell)
            elif not passed:
                failed.append(cell)
    print(f"kx matrix: {len(todo) - len(failed) - len(expected)} of {len(todo)} cells passed"
          + (f"; {len(expected)} pending cells failed as expected "
             f"({', '.join(map(str, expected))})" if expected else "")
          + (f"; failed: {', '.join(map(str, failed))}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(run_all="--all" in sys.argv))
