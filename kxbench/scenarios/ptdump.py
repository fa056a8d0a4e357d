"""ptdump: count the linear map's leaf entries by level, from
/sys/kernel/debug/kernel_page_tables (CONFIG_PTDUMP_DEBUGFS). Extra kernel
arguments (rodata=, crashkernel=) come from ctx.append_extra."""
import re

from .. import machine, userland
from . import common

LINE = re.compile(r"^KX-PT 0x([0-9a-f]+)-0x([0-9a-f]+)\s+\d+\S\s+(PGD|P4D|PUD|PMD|PTE)\b(.*)$")


def run(ctx):
    image, parts = common.prepare(ctx)
    work = common.fresh_workdir(ctx)
    initrd = userland.build_initramfs(work / "initrd.cpio", parts)
    boot = machine.boot(ctx.spec(image, initrd, ctx.append("kx.gen=0")), ctx.log,
                        ctx.boot_timeout())
    ctx.judge_args = [{}]
    return judge(boot, ctx, {})


def entry_size(level, page_size):
    """Bytes one entry maps at LEVEL, for a 4-level table of PAGE_SIZE."""
    per_table = page_size // 8
    shift = {"PTE": 0, "PMD": 1, "PUD": 2, "P4D": 3, "PGD": 3}[level]
    return page_size * per_table ** shift


# Entries in one contiguous run (the CON attribute): {page size: {level: n}}.
CONT_ENTRIES = {4096: {"PTE": 16, "PMD": 16}, 16384: {"PTE": 128, "PMD": 32},
                65536: {"PTE": 32, "PMD": 32}}


def translations(texts, page_size, va_bits=48):
    """Linear-map translations counting each block, page and contiguous run
    once: what the TLB can hold as one entry, the measure of what
    crashkernel= costs the linear map."""
    n = 0
    lo, hi = linear_map(va_bits)
    for text in texts:
        m = LINE.match(text)
        if not m or not m.group(4).strip():
            continue
        start, end = int(m.group(1), 16), int(m.group(2), 16)
        if start < lo or end > hi:
            continue
        level, attrs = m.group(3), m.group(4).split()
        size = entry_size(level, page_size)
        if "CON" in attrs:
            size *= CONT_ENTRIES[page_size].get(level, 1)
        n += -(-(end - start) // size)
    return n


def linear_map(va_bits):
    """[PAGE_OFFSET, PAGE_END) of the linear map for VA_BITS (v5.10 layout)."""
    va_min = 48 if va_bits == 52 else va_bits
    return (1 << 64) - (1 << va_bits), (1 << 64) - (1 << (va_min - 1))


def leaf_counts(texts, page_size, va_bits=48):
    """{level: entries} for mapped linear-map ranges in the dump, and bytes."""
    counts, mapped = {}, 0
    lo, hi = linear_map(va_bits)
    for text in texts:
        m = LINE.match(text)
        if not m or not m.group(4).strip():
            continue    # unmapped ranges carry no attributes
        start, end = int(m.group(1), 16), int(m.group(2), 16)
        if start < lo or end > hi:
            continue
        size = end - start
        level = m.group(3)
        counts[level] = counts.get(level, 0) + size // entry_size(level, page_size)
        mapped += size
    return counts, mapped


def judge(boot, ctx, expect):
    v = common.Verdict()
    common.check_boot_line(v, boot, ctx, gen=0)
    begin, _ = common.find(boot, "KX-PTDUMP-BEGIN")
    end, ef = common.find(boot, "KX-PTDUMP-END")
    v.require(begin is not None and end is not None, "no complete page-table dump")
    va_bits = int(ctx.config.split("-")[1])
    counts, mapped = leaf_counts([ln.text for ln in boot.lines], ctx.page_size, va_bits)
    v.require(mapped > 0, "the dump shows no mapped linear-map range")
    common.check_exit(v, boot, ctx)
    v.evidence |= {"leaf_entries": counts, "mapped_bytes": mapped,
                  "cmdline": ef.get("cmdline") if ef else None}
    v.metrics = {f"leaf_{k.lower()}": n for k, n in counts.items()}
    v.metrics["leaf_total"] = sum(counts.values())
    v.metrics["translations"] = translations([ln.text for ln in boot.lines], ctx.page_size,
                                             va_bits)
    if not v.passed and v.first_bad_line is None:
        v.first_bad_line = common.first_bad(boot)
    return v
