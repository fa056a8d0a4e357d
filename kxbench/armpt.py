"""VMSAv8-64 stage 1 translation tables, read from physical memory.

What TCR_EL1 says about each half of the address space (granule, input
size, start level), how the Arm ARM (D8, "VMSAv8-64 translation table
format descriptors") encodes table, block and page descriptors, and a walker
that lists every valid leaf with its effective EL1 permissions. Pure: the
caller supplies read(pa, length) -> bytes (or None), so the walker runs on
QEMU's gdbstub in physical mode as well as on synthetic memory in the tests.
"""
import struct
from dataclasses import dataclass, field

# TCR_EL1.TG0 and TG1 encode the same granules differently.
TG0 = {0b00: 12, 0b01: 16, 0b10: 14}
TG1 = {0b10: 12, 0b01: 14, 0b11: 16}
OA_48 = (1 << 48) - 1
IPS_52 = 0b110
# Entries in one contiguous-hint run, by granule shift and level.
CONTIG = {12: {1: 16, 2: 16, 3: 16}, 14: {2: 32, 3: 128}, 16: {2: 32, 3: 32}}
# Levels with block descriptors: 64K level-1 blocks need 52-bit output (FEAT_LPA).
BLOCK_LEVELS = {12: (1, 2), 14: (2,), 16: (2,)}


def bits(value, hi, lo):
    return (value >> lo) & ((1 << (hi - lo + 1)) - 1)


@dataclass(frozen=True)
class Regime:
    """One half of the EL1&0 address space, as TCR_EL1 configures it."""
    which: str        # "ttbr0" or "ttbr1"
    shift: int        # granule: 12 (4K), 14 (16K) or 16 (64K)
    ia_bits: int      # input address bits, 64 - TxSZ
    lpa: bool         # 52-bit output addresses (64K granule, IPS 52 bits)
    hpd: bool = False  # hierarchical permissions disabled: table AP/PXN ignored
    hd: bool = False   # hardware dirty state: DBM makes a read-only leaf writable
    disabled: bool = False  # EPDn: walks of this half fault

    @property
    def granule(self):
        return 1 << self.shift

    @property
    def stride(self):
        """Address bits one table level resolves."""
        return self.shift - 3

    @property
    def start_level(self):
        return 4 - -(-(self.ia_bits - self.shift) // self.stride)

    def level_shift(self, level):
        """log2 of the bytes one entry at LEVEL maps."""
        return self.shift + (3 - level) * self.stride

    def entries(self, level):
        if level == self.start_level:
            return 1 << (self.ia_bits - self.level_shift(level))
        return 1 << self.stride

    @property
    def base_va(self):
        return (1 << 64) - (1 << self.ia_bits) if self.which == "ttbr1" else 0

    def block_levels(self):
        return BLOCK_LEVELS[self.shift] + ((1,) if self.lpa and self.shift == 16 else ())


def regime(tcr, which):
    """The Regime TCR gives WHICH ("ttbr0" or "ttbr1")."""
    if bits(tcr, 59, 59):
        raise ValueError("TCR_EL1.DS is set: the LPA2 descriptor format is not parsed")
    lo, hpd = (0, 41) if which == "ttbr0" else (16, 42)
    tg = bits(tcr, lo + 15, lo + 14)
    shift = (TG0 if which == "ttbr0" else TG1).get(tg)
    if shift is None:
        raise ValueError(f"TCR_EL1 {which} granule encoding {tg:#b} is reserved")
    return Regime(which=which, shift=shift, ia_bits=64 - bits(tcr, lo + 5, lo),
                  lpa=shift == 16 and bits(tcr, 34, 32) == IPS_52,
                  hpd=bool(bits(tcr, hpd, hpd)),
                  hd=bool(bits(tcr, 40, 40)), disabled=bool(bits(tcr, lo + 7, lo + 7)))


def table_base(ttbr, reg):
    """The physical address of the top table: TTBR BADDR. With 52-bit output
    addresses, BADDR[5:2] holds PA[51:48]; ASID and CnP are not address bits."""
    if reg.lpa:
        return (ttbr & OA_48 & ~0x3F) | (bits(ttbr, 5, 2) << 48)
    return ttbr & OA_48 & ~1


def output_address(desc, shift, reg):
    """OA of a descriptor whose address field starts at bit SHIFT; with a 64K
    granule and 52-bit output, bits [15:12] are OA[51:48]."""
    oa = desc & OA_48 & ~((1 << shift) - 1)
    if reg.shift == 16:
        oa |= bits(desc, 15, 12) << 48
    return oa


@dataclass(frozen=True)
class Perm:
    """Restrictions inherited from the tables above (APTable, PXNTable)."""
    ro: bool = False        # APTable[1]: no write at any EL
    no_el0: bool = False    # APTable[0]: no EL0 access
    pxn: bool = False       # PXNTable


def leaf_perm(desc, inherited, reg):
    """(writable at EL1, executable at EL1) of a block or page descriptor."""
    ap2, ap1 = bits(desc, 7, 7), bits(desc, 6, 6)
    read_only = ap2 and not (reg.hd and bits(desc, 51, 51))
    writable = not read_only and not inherited.ro
    # A leaf EL0 may write is never executable at EL1 (the Arm ARM's implicit PXN).
    el0_writes = ap1 and writable and not inherited.no_el0
    executable = not bits(desc, 53, 53) and not inherited.pxn and not el0_writes
    return bool(writable), bool(executable)


@dataclass
class Run:
    """COUNT leaves of SIZE bytes at LEVEL, consecutive in VA and PA, with the
    same permissions: one row however large a page-granular map is."""
    va: int
    pa: int
    size: int
    count: int
    level: int
    writable: bool
    executable: bool
    contiguous: bool

    @property
    def end(self):
        return self.va + self.size * self.count

    @property
    def pa_end(self):
        return self.pa + self.size * self.count

    def extends(self, va, pa, size, level, writable, executable, contiguous):
        return (va == self.end and pa == self.pa_end and size == self.size
                and level == self.level and writable == self.writable
                and executable == self.executable and contiguous == self.contiguous)


@dataclass
class Walk:
    which: str
    ttbr: int
    base: int
    regime: Regime
    tables: list = field(default_factory=list)    # (level, pa) per table page
    runs: list = field(default_factory=list)      # Run, in VA order
    errors: list = field(default_factory=list)
    truncated: bool = False

    def add_leaf(self, va, pa, size, level, writable, executable, contiguous):
        last = self.runs[-1] if self.runs else None
        if last and last.extends(va, pa, size, level, writable, executable, contiguous):
            last.count += 1
        else:
            self.runs.append(Run(va, pa, size, 1, level, writable, executable, contiguous))

    def tables_per_level(self):
        out = {}
        for level, _ in self.tables:
            out[level] = out.get(level, 0) + 1
        return dict(sorted(out.items()))

    def leaf_counts(self):
        """{(level, leaf size): leaves}."""
        out = {}
        for r in self.runs:
            out[(r.level, r.size)] = out.get((r.level, r.size), 0) + r.count
        return dict(sorted(out.items()))


def walk(read, ttbr, tcr, which, max_tables=1 << 16):
    """Every valid leaf WHICH's tables map, in VA order, read through READ.
    Stops descending after MAX_TABLES tables (walk.truncated)."""
    reg = regime(tcr, which)
    w = Walk(which=which, ttbr=ttbr, base=table_base(ttbr, reg), regime=reg)
    if reg.disabled:
        return w
    _table(w, read, reg, reg.start_level, w.base, reg.base_va, Perm(), max_tables)
    return w


def _table(w, read, reg, level, pa, va0, perm, max_tables):
    if len(w.tables) >= max_tables:
        w.truncated = True
        return
    n = reg.entries(level)
    data = read(pa, n * 8)
    if data is None or len(data) != n * 8:
        w.errors.append(f"cannot read the level {level} table at PA {pa:#x}")
        return
    w.tables.append((level, pa))
    descs = struct.unpack_from(f"<{n}Q", data)
    ls = reg.level_shift(level)
    runs_checked = set()
    for i, desc in enumerate(descs):
        if not desc & 1:
            continue
        va = va0 + (i << ls)
        if level < 3 and desc & 2:
            _table(w, read, reg, level + 1, output_address(desc, reg.shift, reg), va,
                   _inherit(desc, perm, reg), max_tables)
            continue
        if level == 3 and not desc & 2:
            continue    # reserved encoding: a translation fault, maps nothing
        if level < 3 and level not in reg.block_levels():
            w.errors.append(f"{w.which}: block descriptor at level {level} (VA {va:#x}) "
                            f"is a fault with a {reg.granule >> 10}K granule")
            continue
        contiguous = bool(bits(desc, 52, 52))
        if contiguous and _contiguous_run(i, level, reg) not in runs_checked:
            runs_checked.add(_contiguous_run(i, level, reg))
            if not _contiguous_ok(descs, i, level, reg):
                w.errors.append(f"{w.which}: contiguous bit at VA {va:#x} (level {level}) "
                                f"without a whole aligned run of matching entries")
        w.add_leaf(va, output_address(desc, ls, reg), 1 << ls, level,
                   *leaf_perm(desc, perm, reg), contiguous)


def _inherit(desc, perm, reg):
    if reg.hpd:
        return perm
    return Perm(ro=perm.ro or bool(bits(desc, 62, 62)),
                no_el0=perm.no_el0 or bool(bits(desc, 61, 61)),
                pxn=perm.pxn or bool(bits(desc, 59, 59)))


def _contiguous_run(i, level, reg):
    """Index of the first entry of the contiguous-hint run entry I is in."""
    n = CONTIG[reg.shift].get(level, 1)
    return i - i % n


def _attrs(desc):
    """Everything but the output address, the access flag and the dirty
    state, which hardware may set entry by entry inside a contiguous run."""
    keep = ~(OA_48 & ~0xFFF) & ~(1 << 10)     # bits [47:12] hold the OA alone
    if bits(desc, 51, 51):
        keep &= ~(1 << 7)
    return desc & keep


def _contiguous_ok(descs, i, level, reg):
    """The hint promises CONTIG[...] aligned entries mapping one aligned,
    consecutive output range with the same attributes: the TLB may cache
    the whole run from any one of them."""
    n = CONTIG[reg.shift].get(level)
    if n is None:
        return False
    first = _contiguous_run(i, level, reg)
    group = descs[first:first + n]
    ls = reg.level_shift(level)
    oa0 = output_address(group[0], ls, reg)
    return (len(group) == n and oa0 % (n << ls) == 0 and
            all(d & 1 and output_address(d, ls, reg) == oa0 + (k << ls) and
                _attrs(d) == _attrs(group[0]) for k, d in enumerate(group)))


def translate(read, ttbr, tcr, va):
    """(PA, level) VA translates to through the tables TTBR points at, or
    None: a few reads, where walk() reads every table."""
    which = "ttbr1" if va >> 63 else "ttbr0"
    reg = regime(tcr, which)
    pa, level = table_base(ttbr, reg), reg.start_level
    while True:
        ls = reg.level_shift(level)
        index = ((va - reg.base_va) >> ls) & (reg.entries(level) - 1)
        data = read(pa + index * 8, 8)
        if data is None:
            return None
        desc = int.from_bytes(data, "little")
        if not desc & 1 or (level == 3 and not desc & 2):
            return None
        if level < 3 and desc & 2:
            pa, level = output_address(desc, reg.shift, reg), level + 1
            continue
        return output_address(desc, ls, reg) + (va & ((1 << ls) - 1)), level


def size_name(size):
    for unit, name in ((1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")):
        if size >= unit and size % unit == 0:
            return f"{size // unit}{name}"
    return str(size)
