"""The descriptor walker (kxbench/armpt.py) on synthetic table memory, and
the address-range sets the ptwalk judge compares (kxbench/ranges.py)."""
import struct

import pytest

from kxbench import armpt, ranges

TABLE = PAGE = 0b11
BLOCK = 0b01
AF, RO, CONT, PXN, UXN = 1 << 10, 1 << 7, 1 << 52, 1 << 53, 1 << 54
AP_TABLE_RO, PXN_TABLE = 1 << 62, 1 << 59
TG0 = {12: 0b00, 16: 0b01, 14: 0b10}
TG1 = {12: 0b10, 14: 0b01, 16: 0b11}
G = 1 << 30
M = 1 << 20


def tcr(shift, va_bits, ips=0b101, t0_bits=48):
    return ((64 - t0_bits) | TG0[shift] << 14 | (64 - va_bits) << 16 | TG1[shift] << 30
            | ips << 32)


class Memory:
    """Table pages at made-up physical addresses; read() as the stub's."""

    def __init__(self, granule, at=0x4A400000):
        self.granule, self.next, self.pages = granule, at, {}

    def table(self):
        pa, self.next = self.next, self.next + self.granule
        self.pages[pa] = bytearray(self.granule)
        return pa

    def put(self, table, index, desc):
        struct.pack_into("<Q", self.pages[table], index * 8, desc)

    def read(self, pa, length):
        base = pa - pa % self.granule
        if base not in self.pages:
            return None
        return bytes(self.pages[base][pa - base:pa - base + length])


def index(va, reg, level):
    return ((va - reg.base_va) >> reg.level_shift(level)) & (reg.entries(level) - 1)


def build(mem, reg, mappings):
    """Tables for MAPPINGS [(va, level, desc)], created on demand; the top table."""
    top = mem.table()
    for va, level, desc in mappings:
        table = top
        for lvl in range(reg.start_level, level):
            i = index(va, reg, lvl)
            raw = struct.unpack_from("<Q", mem.pages[table], i * 8)[0]
            if not raw:
                raw = mem.table() | TABLE
                mem.put(table, i, raw)
            table = raw & armpt.OA_48 & ~0xFFF
        mem.put(table, index(va, reg, level), desc)
    return top


LINEAR = 0xFFFF000000000000


def test_4k_walk_finds_1g_and_2m_blocks_and_pages_with_their_permissions():
    t = tcr(12, 48)
    reg = armpt.regime(t, "ttbr1")
    assert (reg.granule, reg.ia_bits, reg.start_level) == (4096, 48, 0)
    mem = Memory(4096)
    top = build(mem, reg, [
        (LINEAR, 1, 0x40000000 | BLOCK | AF | PXN | UXN),                  # 1 GiB, RW NX
        (LINEAR + G, 2, 0x80000000 | BLOCK | AF | RO | UXN),               # 2 MiB, RO X
        (LINEAR + G + 2 * M, 3, 0x80200000 | PAGE | AF | PXN),             # 4K RW NX
        (LINEAR + G + 2 * M + 4096, 3, 0x80201000 | PAGE | AF | PXN),      # merges
        (LINEAR + G + 2 * M + 8192, 3, 0x90000000 | PAGE | AF),            # 4K RW X
    ])
    w = armpt.walk(mem.read, top | 1 << 48, t, "ttbr1")   # ASID and CnP are no address
    assert not w.errors and w.base == top
    assert w.tables_per_level() == {0: 1, 1: 1, 2: 1, 3: 1}
    assert w.leaf_counts() == {(1, G): 1, (2, 2 * M): 1, (3, 4096): 3}
    got = [(r.va, r.pa, r.size, r.count, r.level, r.writable, r.executable) for r in w.runs]
    assert got == [
        (LINEAR, 0x40000000, G, 1, 1, True, False),
        (LINEAR + G, 0x80000000, 2 * M, 1, 2, False, True),
        (LINEAR + G + 2 * M, 0x80200000, 4096, 2, 3, True, False),
        (LINEAR + G + 2 * M + 8192, 0x90000000, 4096, 1, 3, True, True),
    ]
    assert armpt.translate(mem.read, top, t, LINEAR + 0x1234) == (0x40001234, 1)
    assert armpt.translate(mem.read, top, t, LINEAR + G + 2 * M + 4100) == (0x80201004, 3)
    assert armpt.translate(mem.read, top, t, LINEAR + 2 * G) is None


def test_table_descriptors_restrict_what_their_leaves_allow():
    t = tcr(12, 48)
    reg = armpt.regime(t, "ttbr0")
    mem = Memory(4096)
    top = build(mem, reg, [(0x468D8000, 3, 0x468D8000 | PAGE | AF)])   # RW X on its own
    assert [(r.writable, r.executable) for r in armpt.walk(mem.read, top, t, "ttbr0").runs] \
        == [(True, True)]
    l0 = struct.unpack_from("<Q", mem.pages[top], 0)[0]
    mem.put(top, 0, l0 | AP_TABLE_RO)
    assert [(r.writable, r.executable) for r in armpt.walk(mem.read, top, t, "ttbr0").runs] \
        == [(False, True)]
    mem.put(top, 0, l0 | PXN_TABLE)
    assert [(r.writable, r.executable) for r in armpt.walk(mem.read, top, t, "ttbr0").runs] \
        == [(True, False)]
    # TCR_EL1.HPD0 turns the table bits off.
    assert armpt.walk(mem.read, top, t | 1 << 41, "ttbr0").runs[0].executable


def test_el0_writable_leaves_are_never_executable_at_el1():
    t = tcr(12, 48)
    reg = armpt.regime(t, "ttbr0")
    mem = Memory(4096)
    top = build(mem, reg, [(0x1000, 3, 0x1000 | PAGE | AF | 1 << 6)])   # AP = 0b01
    r = armpt.walk(mem.read, top, t, "ttbr0").runs[0]
    assert r.writable and not r.executable


def test_dirty_bit_management_makes_a_read_only_dbm_leaf_writable():
    t = tcr(12, 48)
    reg = armpt.regime(t, "ttbr0")
    mem = Memory(4096)
    top = build(mem, reg, [(0x1000, 3, 0x1000 | PAGE | AF | RO | 1 << 51 | PXN)])
    assert not armpt.walk(mem.read, top, t, "ttbr0").runs[0].writable
    assert armpt.walk(mem.read, top, t | 1 << 40, "ttbr0").runs[0].writable   # TCR.HD


def test_4k_39_starts_at_level_1():
    reg = armpt.regime(tcr(12, 39), "ttbr1")
    assert (reg.start_level, reg.entries(1), reg.base_va) == (1, 512, (1 << 64) - (1 << 39))


@pytest.mark.parametrize("shift, va_bits, top_entries, block", [
    (14, 47, 2048, 32 * M),      # 16K: 32 MiB blocks at level 2
    (16, 48, 64, 512 * M),       # 64K: 512 MiB blocks at level 2
])
def test_16k_and_64k_walks_find_their_level_2_blocks(shift, va_bits, top_entries, block):
    t = tcr(shift, va_bits)
    reg = armpt.regime(t, "ttbr1")
    assert (reg.granule, reg.start_level, reg.entries(1)) == (1 << shift, 1, top_entries)
    mem = Memory(1 << shift)
    top = build(mem, reg, [(reg.base_va, 2, 0x40000000 | BLOCK | AF | PXN),
                           (reg.base_va + block, 3, 0x60000000 | PAGE | AF | PXN)])
    w = armpt.walk(mem.read, top, t, "ttbr1")
    assert not w.errors
    assert w.leaf_counts() == {(2, block): 1, (3, 1 << shift): 1}
    assert w.tables_per_level() == {1: 1, 2: 1, 3: 1}
    assert [(r.va - reg.base_va, r.pa) for r in w.runs] == [(0, 0x40000000),
                                                            (block, 0x60000000)]


def test_16k_has_no_level_1_blocks():
    t = tcr(14, 47)
    reg = armpt.regime(t, "ttbr1")
    mem = Memory(16384)
    top = build(mem, reg, [(reg.base_va + (1 << 36), 1, 0x1000000000 | BLOCK | AF | PXN)])
    w = armpt.walk(mem.read, top, t, "ttbr1")
    assert not w.runs and len(w.errors) == 1 and "level 1" in w.errors[0]


def test_64k_52_bit_output_addresses_come_from_descriptor_bits_15_to_12():
    t = tcr(16, 52, ips=0b110)
    reg = armpt.regime(t, "ttbr1")
    assert reg.lpa and (reg.start_level, reg.entries(1)) == (1, 1024)
    assert 1 in reg.block_levels()          # 4 TiB blocks with 52-bit output
    base = (1 << 64) - (1 << 52)
    high = 0xF << 48
    mem = Memory(65536)
    top = build(mem, reg, [(base, 2, 0x40000000 | 0xF << 12 | BLOCK | AF | PXN),
                           (base + 512 * M, 3, 0x60010000 | PAGE | AF | PXN)])
    w = armpt.walk(mem.read, top, t, "ttbr1")
    assert [r.pa for r in w.runs] == [high | 0x40000000, 0x60010000]
    # The same bits are not an address in a 48-bit configuration's 4K descriptor.
    assert armpt.output_address(0x40000000 | 0xF << 12, 30, armpt.regime(tcr(12, 48), "ttbr1")) \
        == 0x40000000
    # TTBR BADDR[5:2] holds PA[51:48] of the top table when the output is 52-bit.
    assert armpt.table_base(0x4A400000 | 0x3 << 2 | 1, reg) == 0x3 << 48 | 0x4A400000
    assert armpt.table_base(0x4A400000 | 1, armpt.regime(tcr(16, 48), "ttbr1")) == 0x4A400000


def test_a_contiguous_hint_must_cover_a_whole_matching_run():
    t = tcr(12, 48)
    reg = armpt.regime(t, "ttbr0")
    good = [(0x200000 + i * 4096, 3, (0x600000 + i * 4096) | PAGE | AF | CONT | PXN)
            for i in range(16)]
    mem = Memory(4096)
    w = armpt.walk(mem.read, build(mem, reg, good), t, "ttbr0")
    assert not w.errors and w.leaf_counts() == {(3, 4096): 16}
    mem = Memory(4096)
    w = armpt.walk(mem.read, build(mem, reg, good[:15]), t, "ttbr0")
    assert w.errors and "contiguous" in w.errors[0]


def test_unreadable_tables_are_errors_and_the_walk_can_be_capped():
    t = tcr(12, 48)
    reg = armpt.regime(t, "ttbr0")
    mem = Memory(4096)
    top = build(mem, reg, [(i * 2 * M, 3, i * 2 * M | PAGE | AF) for i in range(4)])
    w = armpt.walk(mem.read, top, t, "ttbr0", max_tables=4)
    assert w.truncated and len(w.tables) == 4
    w = armpt.walk(mem.read, 0x10000000, t, "ttbr0")
    assert w.errors and "cannot read" in w.errors[0]


def test_reserved_granule_encodings_and_lpa2_are_refused():
    with pytest.raises(ValueError):
        armpt.regime(0b11 << 14, "ttbr0")
    with pytest.raises(ValueError):
        armpt.regime(tcr(12, 48) | 1 << 59, "ttbr1")


def test_ranges_subtract_intersect_and_grow_to_pages():
    a = [(0x0, 0x10000), (0x20000, 0x30000)]
    assert ranges.subtract(a, [(0x5000, 0x8000)]) == [(0, 0x5000), (0x8000, 0x10000),
                                                      (0x20000, 0x30000)]
    assert ranges.intersect(a, [(0xF000, 0x21000)]) == [(0xF000, 0x10000), (0x20000, 0x21000)]
    assert ranges.outward([(0x5000, 0x8000)], 0x10000) == [(0, 0x10000)]
    assert ranges.outward([(0x5000, 0x8000)], 0x1000) == [(0x5000, 0x8000)]
    assert ranges.normalize([(5, 9), (0, 5), (20, 20)]) == [(0, 9)]
    assert ranges.total(a) == 0x20000 and ranges.show((1, 2)) == "0x1-0x2"
