"""crash-shrink: /sys/kernel/kexec_crash_size shrinks the crash kernel region
in whole 2 MiB units, so that no unit the protection unmaps ever holds memory
given back to the page allocator.

crash-protect runs first and must pass; then the guest asks for a size that
is not whole units (128 MiB + 4 KiB of the 256 MiB region), loads a crash
kernel into what is left and dumps the linear map.
"""
from .. import crashkernel
from . import common, crash_protect

ASKED = (128 << 20) + 4096
UNIT = crashkernel.UNIT


def run(ctx):
    boot = crash_protect.boot_guest(ctx, f"kx.shrink={ASKED}")
    ctx.judge_args[0]["shrink"] = ASKED
    return judge(boot, ctx, *ctx.judge_args)


def judge(boot, ctx, expect):
    v = crash_protect.judge(boot, ctx, expect)
    _, sh = common.find(boot, "KX-CRASH-SHRINK")
    if not v.require(sh is not None and sh["range"] != "none",
                     "the region was not shrunk through /sys/kernel/kexec_crash_size"):
        return v
    old, asked, size = int(sh["old"]), int(sh["asked"]), int(sh["size"])
    want = crashkernel.round_up(asked)
    v.require(asked == expect["shrink"] and size == want,
              f"asked for {asked} bytes, the region kept {size}: expected {want}, "
              "whole 2 MiB units")
    start, last = (int(x, 16) for x in sh["range"].split("-"))
    v.require(last + 1 - start == size,
              f"/proc/iomem's region {sh['range']} is not the {size} bytes "
              "kexec_crash_size says")
    freed_kb = (old - size) >> 10
    gained_kb = int(sh["memfree_after_kb"]) - int(sh["memfree_before_kb"])
    v.require(gained_kb >= freed_kb * 9 // 10,
              f"MemFree grew by {gained_kb} KiB, but {freed_kb} KiB were given back")
    _, rl = common.find(boot, "KX-CRASH-RELOADED")
    v.require(rl is not None and rl["loaded"] == "1",
              "no crash kernel loaded into the shrunk region")
    region = v.evidence.get("region")
    shrunk = crash_protect.dump(boot, "shrunk")
    if v.require(region and shrunk, "no linear-map dump of the shrunk region while loaded"):
        lo = int(region["va"], 16)
        cover, mapped, _ = crash_protect.units(shrunk, lo, lo + size + UNIT, ctx.page_size)
        inside = [u for u in cover if u < lo + size]
        v.require(len(inside) == size // UNIT and not any(mapped.get(u) for u in inside),
                  f"while loaded, {sum(bool(mapped.get(u)) for u in inside)} of "
                  f"{size // UNIT} 2 MiB units of the shrunk region are mapped")
        v.require(mapped.get(lo + size) == UNIT,
                  "the 2 MiB given back just past the shrunk region is not mapped whole "
                  "while the crash kernel is loaded")
    v.evidence["shrink"] = {"old": old, "asked": asked, "size": size, "range": sh["range"],
                            "memfree_gained_kb": gained_kb}
    if not v.passed and v.first_bad_line is None:
        v.first_bad_line = common.first_bad(boot)
    return v
