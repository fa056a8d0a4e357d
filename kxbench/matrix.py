"""The kexec matrix of the series: every scenario that kexecs, on every
config under every profile, with a 32 MiB and a 256 MiB payload and with
four CPUs (design.md section 6), ptwalk on every config under dt-el2 and
uefi, crashkernel=,high/,low kdump, bad crashkernel= values and a shrunk
crash kernel region, and the server build variant with VHE, KVM, KPTI,
pointer authentication and debug_pagealloc, and 64k-52 without LVA; paths
operators hit and the debug build variant (KASAN, kmemleak, lockdep, fault
injection).

It is too large for every `make check`, so make check runs a sample that
rotates with a seed: a counter kept in the cache and advanced once per
sample (KX_MATRIX_SEED fixes it to reproduce a run). `./kx matrix --all`
runs every cell.

Every kernel costs minutes to build on 2 cores, so the rotation is by
kernel first: builds(seed) is what a seed may build: the series on 4k-48
and 64k-48, the base on 4k-48, and the v6.12 series and base on 4k-48
always, one of the two KASAN kernels (by the seed's parity), one of 4k-39,
16k-47, 64k-52, the server variant and the v6.12 series on 16k-47 and
64k-48 (in turn), and every second seed one KUnit variant (in turn). A cell runs
only in seeds that build its kernel: the fixed cells (fixed_cells(), the
ones make check always runs where their kernel is built) in each of them,
every other cell in one of them, dealt so that each seed's guest time
(minutes()) comes out even. builds() repeats every PERIOD seeds, so every
cell runs in one of any PERIOD consecutive seeds; kernels(seed) lists the
builds that seed's cells need, for make setup.
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
from .scenarios import (SCENARIOS as MODULES, features, hibernate, kdump, kexec_reboot,
                        selftests)
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
# crashkernel=,high with no RAM above 4 GiB (QEMU's RAM starts at 1 GiB).
HIGH_FALLBACK, HIGH_FALLBACK_MIB = "crashkernel=512M,high", 2048
SELFTESTS_HIGH_LOW = "crashkernel=256M,high crashkernel=64M,low"
BIG_PAYLOAD_MIB = 256
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
    return (out + server_cells() + odd_path_cells() + kunit_cells() + debug_cells()
            + edge_cells() + check_cells() + v612_cells())


# The v6.12 series: the scenarios whose judges prove what it adds to v6.12
# (flat tables less nomap pages, parked vectors, the MMU-off code cleaned at
# kexec -e, segment checks), and those v6.12 already passed, on its granules
# under DT and UEFI; kdump with ,high/,low; hibernation with a no-map region
# inside a page; its kselftests and KUnit suite; memory hotplug; the crash
# kernel region unmapped while loaded, in 2 MiB units on every granule. Its
# base passes the scenarios v6.12 already passes; where it must fail, the
# tests of tests/test_scenarios.py say why.
V612 = "series-6.12"
V612_BASE = "base-6.12"
V612_CONFIGS = ("4k-48", "16k-47", "64k-48")
V612_SCENARIOS = ("kexec-reboot", "kexec-file", "kdump", "hibernate", "mmu-state",
                  "reloc-fault", "ptwalk")


def v612_cells():
    out = [Cell(s, c, p, kernel=V612) for c in V612_CONFIGS for p in ("dt-el2", "uefi")
           for s in V612_SCENARIOS]
    out += [Cell("kexec-reboot", "4k-48", "dt-el1", kernel=V612),
            Cell("kdump", "4k-48", "dt-el2", append=HIGH_LOW, kernel=V612)]
    out += [Cell("hibernate", c, "dt-el2", append=hibernate.SUB_PAGE_NOMAP, kernel=V612)
            for c in ("16k-47", "64k-48")]
    # Memory hotplug (its server variant, under uefi): no memory goes offline
    # under a loaded image, none offline is loaded into, and kexec_file_load()
    # keeps out of a DIMM left offline at the top of RAM.
    out += [Cell("memory-hotplug", "4k-48", "uefi", kernel=V612),
            Cell("selftests", "4k-48", "uefi", variant="server", kernel=V612,
                 append=selftests.DIMM_OFFLINE)]
    out += [Cell("selftests", "4k-48", p, kernel=V612) for p in ("dt-el2", "uefi")]
    out += [Cell("kunit", c, "dt-el2", kernel=V612) for c in ("4k-48", "64k-48")]
    # The crash kernel region: unmapped whole while loaded and mapped in 2 MiB
    # units, on each granule, in pages with rodata=full, the ,high region;
    # shrunk in whole units; a normal image refused there, whether the copy
    # would have lost a block (4K rodata=on) or kept pages (rodata=full, 64K).
    out += [Cell("crash-protect", c, "dt-el2", kernel=V612) for c in V612_CONFIGS]
    out += [Cell("crash-protect", "4k-48", "uefi", append="rodata=full", kernel=V612),
            Cell("crash-protect", "4k-48", "dt-el2", append=HIGH_LOW, kernel=V612)]
    out += [Cell("crash-shrink", c, p, kernel=V612)
            for c, p in (("4k-48", "dt-el2"), ("64k-48", "uefi"))]
    out += [Cell("crash-region-load", c, "dt-el2", append=a, kernel=V612)
            for c, a in (("4k-48", ""), ("4k-48", "rodata=full"), ("64k-48", ""))]
    out += [Cell(s, "4k-48", p, kernel=V612_BASE)
            for s in ("kexec-reboot", "kexec-file", "kdump", "hibernate")
            for p in ("dt-el2", "uefi")]
    return out


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


def debug_cells():
    return [Cell(s, c, p, variant="debug") for c in DEBUG_CONFIGS
            for p in ("dt-el2", "uefi") for s in DEBUG_SCENARIOS]


# Edges of the relocation's copy of the linear map: a normal image asked into
# the crash kernel region while a crash kernel is loaded, which must be
# refused the same way whether the region was mapped by blocks (4K,
# rodata=on), by pages (rodata=full) or with another granule; and
# hibernation with a no-map region that shares a page with RAM, which the
# copy leaves out, on each granule.
def edge_cells():
    out = [Cell("crash-region-load", c, "dt-el2", append=a)
           for c, a in (("4k-48", ""), ("4k-48", "rodata=full"), ("16k-47", ""),
                        ("64k-48", ""))]
    out += [Cell("hibernate", c, "dt-el2", append=hibernate.SUB_PAGE_NOMAP)
            for c in ("4k-48", "16k-47", "64k-48")]
    # crashkernel=X,high on a guest whose RAM is all below 4 GiB falls back there.
    out += [Cell("kdump", "4k-48", "dt-el2", append=HIGH_FALLBACK, mem=HIGH_FALLBACK_MIB)]
    # ... and in a kernel (started by a kexec reboot) whose RAM is all above
    # 4 GiB, where the 32-bit DMA zone spans all of it.
    out += [Cell("kdump", "4k-48", "dt-el2",
                 append=f"{kdump.KEXEC_FIRST} {kdump.RAM_ABOVE_4G} crashkernel=512M,high")]
    # The kselftests with two "Crash kernel" ranges (,high and ,low).
    out += [Cell("selftests", "4k-48", "dt-el2", append=SELFTESTS_HIGH_LOW)]
    # ... and on a kernel with memory hotplug, where a load races memory
    # going offline (a hot-added DIMM's).
    out += [Cell("selftests", "4k-48", "uefi", variant="server")]
    # ... and with that DIMM left offline at the top of RAM, where neither
    # the fuzzer's model nor kexec_file_load() may place a segment.
    out += [Cell("selftests", "4k-48", "uefi", variant="server", append=selftests.DIMM_OFFLINE)]
    return out


def debug_config(seed):
    """The one debug config whose cells run with SEED."""
    return DEBUG_CONFIGS[seed % len(DEBUG_CONFIGS)]


def fixed_cells():
    """The cells make check runs in every seed that builds their kernel
    (fixed(seed)): one proof of each patch on the default config, where it
    is fast, and the peers where they must fail. Every other cell, those
    that were fixed before included (check_cells()), rotates."""
    # The core scenarios on the default config at EL2, and kexec reboot
    # through UEFI; the unpatched peer through UEFI.
    out = [Cell(s, "4k-48", "dt-el2")
           for s in ("kexec-reboot", "kdump", "hibernate", "mmu-state")]
    out += [Cell("kexec-reboot", "4k-48", "uefi"),
            Cell("kexec-reboot", "4k-48", "uefi", kernel="base")]
    # What the relocation tables map, walked from outside the guest; an
    # exception during the copy parks in the routine's own vectors.
    out += [Cell("ptwalk", "4k-48", "dt-el2"), Cell("reloc-fault", "4k-48", "dt-el2")]
    # The crash kernel region: unmapped whole while loaded, kept in blocks;
    # crashkernel=,high and ,low; values that cannot be met reserve nothing.
    out += [Cell("crash-protect", "4k-48", "dt-el2"),
            Cell("kdump", "4k-48", "dt-el2", append=HIGH_LOW),
            Cell("bad-crashkernel", "4k-48", "dt-el2")]
    # The edges version 2 got wrong: a normal image refused the protected
    # crash kernel region; a no-map region sharing a 64K page with RAM does
    # not stop hibernation; crashkernel=,high without RAM above 4 GiB.
    out += [Cell("crash-region-load", "4k-48", "dt-el2"),
            Cell("hibernate", "64k-48", "dt-el2", append=hibernate.SUB_PAGE_NOMAP),
            Cell("kdump", "4k-48", "dt-el2", append=HIGH_FALLBACK, mem=HIGH_FALLBACK_MIB)]
    # Where their kernels are built: the copy at EL2 under VHE and memory
    # hot-remove (server variant), and the trans_pgd KUnit suite at 1 GiB.
    out += [Cell("mmu-state", "4k-48", "dt-el2", cpu="max", variant="server"),
            Cell("memory-hotplug", "4k-48", "uefi"),
            Cell("kunit", "4k-48", "dt-el2", mem=1024)]
    # The v6.12 series: one proof of each of its patches on its default
    # config (its KUnit suite runs with the seeds that build it).
    out += [Cell(s, "4k-48", "dt-el2", kernel=V612)
            for s in ("kexec-reboot", "ptwalk", "mmu-state", "reloc-fault",
                      "crash-protect", "crash-region-load")]
    out += [Cell("selftests", "4k-48", "uefi", kernel=V612)]
    return out


def check_cells():
    """Cells make check ran in every seed once, which now rotate with the
    matrix: each says why it matters."""
    # The new kernel lands on the old one's text and read-only data, on every
    # config (the checks demand the overlap). kexec-tools' default placement
    # does that under DT with 4K and 16K pages; a 64K kernel has a 'reserved' gap
    # in its image that kexec-tools avoids, which kx.placement=old-kernel hides.
    out = [Cell("kexec-reboot", c, "dt-el2", append=kexec_reboot.OLD_KERNEL) for c in CONFIGS]
    # The region in pages with rodata=full, the ,high region protected, and a
    # shrunk region on 64K pages through UEFI.
    out += [Cell("crash-protect", "4k-48", "uefi", append="rodata=full"),
            Cell("crash-protect", "4k-48", "dt-el2", append=HIGH_LOW),
            Cell("crash-shrink", "64k-48", "uefi")]
    return out


# The rotation. Every PERIOD seeds builds() repeats, so any PERIOD
# consecutive seeds run every cell.
PERIOD = 12
# What every seed builds: the series on the two configs of the series check
# and of the debug variant, and the base, on which fixed cells must fail.
CORE_BUILDS = (("series", "4k-48", ""), ("series", "64k-48", ""), ("base", "4k-48", ""),
               (V612, "4k-48", ""), (V612_BASE, "4k-48", ""))
SERVER = ("series", "4k-48", "server")
# One of these each seed, in turn: the configs and the variant that only
# their own cells need.
ROTATING_BUILDS = (("series", "4k-39", ""), ("series", "16k-47", ""),
                   ("series", "64k-52", ""), SERVER, (V612, "16k-47", ""),
                   (V612, "64k-48", ""))
# The seeds that build the server variant also build the v6.12 series'
# (memory hotplug is in it): its memory-hotplug cells run there.
V612_SERVER = (V612, "4k-48", "server")
# Every KUNIT_EVERY-th seed, the KUnit variant of one of these, in turn.
KUNIT_BUILDS = tuple(("series", c, "kunit") for c in ("4k-48", "4k-39", "16k-47", "64k-48")) \
    + tuple((V612, c, "kunit") for c in ("4k-48", "64k-48"))
KUNIT_EVERY = 2
# What tests/test_scenarios.py boots besides its cells: the base, on which
# its must-fail tests run, and the default series kernel. (The LKDTM warning
# test boots the server variant, and runs in the seeds that build it.)
TEST_BUILDS = (("series", "4k-48", ""), ("base", "4k-48", ""), (V612_BASE, "4k-48", ""))


def build_of(cell):
    """(kernel, config, variant) of the kernel CELL boots: its variant, or the
    one its scenario always builds (kunit's; memory-hotplug's VARIANT)."""
    variant = cell.variant or ("kunit" if cell.scenario == "kunit" else
                               getattr(MODULES.get(cell.scenario), "VARIANT", ""))
    return cell.kernel, cell.config, variant


def builds(seed):
    """The kernels SEED may build, in the order make setup builds them."""
    rotating = ROTATING_BUILDS[seed % len(ROTATING_BUILDS)]
    out = [*CORE_BUILDS, ("series", debug_config(seed), "debug"), rotating]
    if rotating == SERVER:
        out.append(V612_SERVER)
    if seed % KUNIT_EVERY == 0:
        out.append(KUNIT_BUILDS[seed // KUNIT_EVERY % len(KUNIT_BUILDS)])
    return out


def residues(build):
    """The seeds mod PERIOD that build BUILD; every one for a kernel that
    builds() never names (a cell of a new variant runs somewhere all the same)."""
    return [r for r in range(PERIOD) if build in builds(r)] or list(range(PERIOD))


def fixed(seed):
    """The fixed cells of SEED: those whose kernel it builds."""
    return [c for c in fixed_cells() if seed % PERIOD in residues(build_of(c))]


# Rough guest minutes of a cell here, on one core: what each seed's share of
# the matrix is balanced by, and how make check deals the slowest cells to its
# workers. Most cells take about one; a payload costs about 0.8 s per MiB under
# TCG; cpu max emulates more; measured for the debug chain and selftests.
SCENARIO_MINUTES = {"kexec-chain": 2.5, "mmu-state": 2, "memory-hotplug": 3,
                    "bad-crashkernel": 2, "selftests": 1.5}
DEBUG_MINUTES = {"kexec-chain": 12, "selftests": 11}


def minutes(cell):
    m = SCENARIO_MINUTES.get(cell.scenario, 1) + max(0, cell.payload_mib - 32) * 0.8 / 60
    m += (cell.mem or 0) / 1024 * 0.05
    if cell.variant == "debug":
        return DEBUG_MINUTES.get(cell.scenario, 3 * m)
    return m * (2 if cell.cpu == "max" else 1)


# A test estimated at this or more is dealt to a worker of make check up front.
SLOW_MINUTES = 4


def deal(costs, workers):
    """For make check's WORKERS: a group (0 to WORKERS - 1) for each of COSTS
    (minutes) of SLOW_MINUTES or more, the longest first, each to the group
    with the least so far; None for the rest."""
    groups, load = [None] * len(costs), [0.0] * max(workers, 1)
    for i in sorted(range(len(costs)), key=lambda i: -costs[i]):
        if costs[i] >= SLOW_MINUTES:
            group = load.index(min(load))
            groups[i], load[group] = group, load[group] + costs[i]
    return groups


def schedule(all_cells):
    """{cell: seed mod PERIOD} for the cells of ALL_CELLS that are not fixed:
    each in one of the seeds that build its kernel, the longest first, each
    to the seed with the least guest time so far (fixed cells included)."""
    load = [sum(minutes(c) for c in fixed(r)) for r in range(PERIOD)]
    rest = set(all_cells) - set(fixed_cells())
    out = {}
    for cell in sorted((c for c in all_cells if c in rest), key=minutes, reverse=True):
        r = min(residues(build_of(cell)), key=lambda r: (load[r], r))
        load[r] += minutes(cell)
        out[cell] = r
    return out


def sample(seed, all_cells=None):
    """The matrix cells of SEED: those fixed cells that are in the matrix and
    whose kernel SEED builds, and the others schedule() gives SEED."""
    all_cells = cells() if all_cells is None else all_cells
    dealt = schedule(all_cells)
    return [c for c in all_cells if dealt.get(c, -1) == seed % PERIOD
            or (c not in dealt and seed % PERIOD in residues(build_of(c)))]


def seed_cells(seed):
    """Every cell make check runs with SEED: its fixed cells, then the rest of
    its sample."""
    mine = fixed(seed)
    return mine + [c for c in sample(seed) if c not in mine]


def kernels(seed):
    """The kernels SEED's make check boots, in build order: those of its
    cells and TEST_BUILDS."""
    want = {build_of(c) for c in seed_cells(seed)} | set(TEST_BUILDS)
    order = builds(seed)
    return [b for b in order if b in want] + sorted(want - set(order))


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
