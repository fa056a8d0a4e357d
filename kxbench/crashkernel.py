"""crashkernel= as the series reads it, and the memory ranges the guest
reports for it: what a kdump judge expects to find reserved and
what the capture kernel must be given."""
import re

from .util import KxError

SZ_4G = 4 << 30
RAM_BASE = 1 << 30          # QEMU virt's RAM starts at 1 GiB
LOW_DEFAULT = 128 << 20     # the series' crashkernel=,low default on arm64
UNIT = 2 << 20              # KEXEC_CRASH_MEM_ALIGN: sizes are rounded up to it
SUFFIX = {"K": 10, "M": 20, "G": 30, "T": 40}
DEFAULT = "crashkernel=256M"   # what kdump and crash-protect boot with


def args(append):
    """DEFAULT, unless APPEND (--append) gives its own crashkernel=."""
    return [] if "crashkernel=" in append else [DEFAULT]


def given(append):
    """The crashkernel= words that ARGS(APPEND) and APPEND boot with."""
    return [w for w in [*args(append), *append.split()] if w.startswith("crashkernel=")]


def parse_size(text):
    """memparse(): '512M' -> bytes."""
    m = re.fullmatch(r"(\d+)([KMGT]?)", text, re.I)
    if not m:
        raise KxError(f"crashkernel size {text!r} is not a number with K, M, G or T")
    return int(m.group(1)) << SUFFIX.get(m.group(2).upper(), 0)


def round_up(n):
    """N bytes in whole UNITs, as the kernel reserves and shrinks the region."""
    return -(-n // UNIT) * UNIT


def expected(append, mem_mib=None, ram_above_4g=False):
    """What crashkernel= in APPEND (kernel arguments) reserves when it can:
    {"plain": bytes} for crashkernel=X, or {"high": bytes, "low": bytes} for
    crashkernel=X,high [crashkernel=Y,low]. As the kernel does: the last of
    each kind counts, crashkernel=X wins over ,high. With MEM_MIB of RAM
    (from 1 GiB up) too little above 4 GiB for ,high, the region falls back
    below 4 GiB, where 32-bit devices reach it, with no ,low part:
    {"fallback": bytes}. With RAM_ABOVE_4G (all of the RAM above 4 GiB, where
    the 32-bit DMA zone spans it) it falls back too, above 4 GiB:
    {"fallback": bytes, "above_4g": True}."""
    plain = high = low = None
    for word in append.split():
        if not word.startswith("crashkernel="):
            continue
        value = word.split("=", 1)[1]
        if value.endswith(",high"):
            high = parse_size(value[:-5])
        elif value.endswith(",low"):
            low = parse_size(value[:-4])
        else:
            plain = parse_size(value)
    if plain is not None:
        return {"plain": round_up(plain)}
    if high is not None:
        if ram_above_4g:
            return {"fallback": round_up(high), "above_4g": True}
        if mem_mib is not None and RAM_BASE + (mem_mib << 20) - SZ_4G < round_up(high):
            return {"fallback": round_up(high)}
        return {"high": round_up(high), "low": round_up(LOW_DEFAULT if low is None else low)}
    raise KxError(f"no crashkernel= to expect a reservation from in {append!r}")


def iomem_ranges(text):
    """'b0000000-bfffffff,...' (inclusive, as /proc/iomem prints them) ->
    [(start, end)] with END exclusive; 'none' -> []."""
    if text == "none":
        return []
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.append((int(lo, 16), int(hi, 16) + 1))
    return out


def usable_ranges(text):
    """'0x..+0x..,...' (start+size of linux,usable-memory-range) -> [(start, end)]."""
    if text == "none":
        return []
    out = []
    for part in text.split(","):
        start, _, size = part.partition("+")
        out.append((int(start, 16), int(start, 16) + int(size, 16)))
    return out


def check_reserved(ranges, want):
    """Reasons why RANGES (the "Crash kernel" entries) are not what WANT
    (expected()) reserves; [] when they are."""
    sizes = [end - start for start, end in ranges]
    if "plain" in want:
        if sizes != [want["plain"]]:
            return [f"crash kernel regions {fmt(ranges)}, expected one of {want['plain']:#x} bytes"]
        return []
    if "fallback" in want:
        above = want.get("above_4g", False)
        placed = all(s >= SZ_4G if above else e <= SZ_4G for s, e in ranges)
        if sizes != [want["fallback"]] or not placed:
            where = ("above 4 GiB (all RAM is there)" if above else "below 4 GiB")
            return [f"crash kernel regions {fmt(ranges)}: expected one of "
                    f"{want['fallback']:#x} bytes {where} and no ,low part "
                    "(crashkernel=,high without room above the 32-bit DMA zone falls back)"]
        return []
    high = [r for r in ranges if r[0] >= SZ_4G]
    low = [r for r in ranges if r[1] <= SZ_4G]
    reasons = []
    if [e - s for s, e in high] != [want["high"]]:
        reasons.append(f"crash kernel regions {fmt(ranges)}: expected one of {want['high']:#x} "
                       f"bytes above 4 GiB (crashkernel=,high)")
    if [e - s for s, e in low] != ([want["low"]] if want["low"] else []):
        reasons.append(f"crash kernel regions {fmt(ranges)}: expected "
                       + (f"one of {want['low']:#x} bytes below 4 GiB (crashkernel=,low)"
                          if want["low"] else "none below 4 GiB (crashkernel=0,low)"))
    if len(ranges) != len(high) + len(low):
        reasons.append(f"crash kernel regions {fmt(ranges)}: one straddles 4 GiB")
    return reasons


def fmt(ranges):
    return ",".join(f"{s:#x}-{e:#x}" for s, e in ranges) or "none"
