"""crash-protect: while a crash kernel is loaded its whole region is absent
from the linear map, every 2 MiB unit of it, and the kernel refuses to read
it through /proc/kcore; after kexec -p -u the linear map is what it was
before the load, entry for entry, so nothing was split.

The guest boots with crashkernel=256M (unless --append gives crashkernel=)
and rodata=on (unless --append sets rodata=), dumps the linear map's part of
kernel_page_tables before the load, while loaded and after the unload, and
reads 4 KiB through /proc/kcore at the region's start and at each segment.
"""
from .. import crashkernel, evidence, machine, userland
from . import common, ptdump

UNIT = crashkernel.UNIT     # the protection's unit: a 2 MiB block or contiguous run
# Kernel arguments under which the linear map stays page-granular.
PAGE_GRANULAR = ("rodata=full", "debug_pagealloc=on")


def run(ctx):
    return judge(boot_guest(ctx), ctx, *ctx.judge_args)


def boot_guest(ctx, *extra):
    """Boot the guest with EXTRA kernel arguments; set ctx.judge_args."""
    image, parts = common.prepare(ctx)
    work = common.fresh_workdir(ctx)
    initrd = userland.build_initramfs(work / "initrd.cpio", parts)
    disk = common.data_disk(work / "disk.img", image, initrd)
    # The configs enable rodata=full, which maps all of memory with pages;
    # rodata=on is what leaves the crash reservation to decide.
    rodata = [] if "rodata=" in ctx.append_extra else ["rodata=on"]
    # --append may ask for another crashkernel=, such as ,high and ,low: the
    # region checked is the highest, the one a crash kernel is loaded into.
    append = ctx.append("kx.gen=0", *crashkernel.args(ctx.append_extra), *rodata, *extra)
    boot = machine.boot(ctx.spec(image, initrd, append, disk), ctx.log, ctx.boot_timeout())
    values = [w.split("=", 1)[1] for w in crashkernel.given(ctx.append_extra)]
    ctx.judge_args = [{"crashkernel": " ".join(values)}]
    return boot


def dump(boot, state):
    """[(start, end, level, attrs)] of the dump made in STATE, or None."""
    inside, out = False, []
    for ln in boot.lines:
        f = common.fields(ln.text)
        if ln.text.startswith("KX-PTDUMP-BEGIN") and f.get("state") == state:
            inside = True
        elif ln.text.startswith("KX-PTDUMP-END") and inside:
            return out
        elif inside:
            m = ptdump.LINE.match(ln.text)
            if m:
                out.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3),
                            m.group(4).split()))
    return None


def is_mapped(attrs):
    """ptdump prints no attributes for a hole and F for an invalid entry."""
    return bool(attrs) and "F" not in attrs


def units(entries, lo, hi, page_size):
    """For each 2 MiB unit of [lo, hi): (bytes covered by the dump, bytes
    mapped), and the translations that map the range (blocks, pages and
    contiguous runs, each once)."""
    cover, mapped, translations = {}, {}, 0
    for start, end, level, attrs in entries:
        a, b = max(start, lo), min(end, hi)
        if a >= b:
            continue
        size = ptdump.entry_size(level, page_size)
        if "CON" in attrs:
            size *= ptdump.CONT_ENTRIES[page_size].get(level, 1)
        if is_mapped(attrs):
            translations += -(-(b - a) // size)
        for u in range(a - (a - lo) % UNIT, b, UNIT):
            part = min(b, u + UNIT) - max(a, u)
            cover[u] = cover.get(u, 0) + part
            if is_mapped(attrs):
                mapped[u] = mapped.get(u, 0) + part
    return cover, mapped, translations


def kcore(boot, state):
    """{pa: fields} of the kcore reads made in STATE."""
    return {int(f["pa"], 16): f for ln in boot.lines
            for f in [evidence.parse(ln.text, "KX-KCORE")]
            if f and f["state"] == state}


def judge(boot, ctx, expect):
    v = common.Verdict()
    common.check_boot_line(v, boot, ctx, gen=0)
    _, res = common.find(boot, "KX-CRASHRES")
    if not v.require(res is not None and res["range"] != "none",
                     f"no crash kernel region with crashkernel={expect['crashkernel']}"):
        common.check_exit(v, boot, ctx)
        return v
    first, last = (int(x, 16) for x in res["range"].split("-"))
    pa, size = first, last + 1 - first
    v.require(pa % UNIT == 0 and size % UNIT == 0,
              f"the crash kernel region {res['range']} is not whole 2 MiB units")
    _, lf = common.find(boot, "KX-CRASH-LOADED")
    _, uf = common.find(boot, "KX-CRASH-UNLOADED")
    v.require(lf is not None and lf["loaded"] == "1", "kexec -p loaded no crash kernel")
    v.require(uf is not None and uf["loaded"] == "0", "kexec -p -u left the crash kernel")
    loaded, unloaded = kcore(boot, "loaded"), kcore(boot, "unloaded")
    start = loaded.get(pa) or unloaded.get(pa)
    if not v.require(start is not None and start["found"] == "1",
                     "/proc/kcore has no linear-map address for the region"):
        common.check_exit(v, boot, ctx)
        return v
    lo = int(start["va"], 16)
    hi = lo + size
    dumps = {s: dump(boot, s) for s in ("before", "loaded", "unloaded")}
    for state, entries in dumps.items():
        v.require(entries, f"no linear-map dump {state} the load")
    page = ctx.page_size
    evidence, mapped_bytes = {}, {}
    for state, entries in dumps.items():
        cover, mapped, translations = units(entries or [], lo, hi, page)
        mapped_bytes[state] = sum(mapped.values())
        evidence[state] = {"translations": translations,
                           "units_mapped": sum(m == UNIT for m in mapped.values()),
                           "units_covered": sum(c == UNIT for c in cover.values())}
    n = size // UNIT
    v.require(evidence["loaded"]["units_covered"] == n and not mapped_bytes["loaded"],
              f"while loaded, {evidence['loaded']['units_mapped']} of {n} 2 MiB units "
              f"of the crash kernel region are still mapped")
    for state in ("before", "unloaded"):
        v.require(evidence[state]["units_mapped"] == n,
                  f"{state} the load, {evidence[state]['units_mapped']} of {n} 2 MiB units "
                  "of the crash kernel region are mapped")
    v.require(dumps["before"] == dumps["unloaded"],
              "the linear map after kexec -p -u differs from the one before the load")
    if not any(ctx.asks(a) for a in PAGE_GRANULAR):
        # At most one per 2 MiB unit: a kernel that leaves the region in
        # larger blocks (v6.12) has fewer, and fails above for keeping it mapped.
        v.require(evidence["before"]["translations"] <= n,
                  f"the region is mapped by {evidence['before']['translations']} "
                  f"translations, more than {n}: blocks or 2 MiB runs were not kept")
    reads = list(loaded.values())
    v.require(reads and all(f["rc"] == "0" and f["zero"] == "1" for f in reads),
              f"/proc/kcore read the region while loaded: {reads}")
    v.require(any(f["arm64"] == "1" for f in unloaded.values()),
              "after the unload /proc/kcore shows no Image header in any segment: the "
              "reads prove nothing")
    v.require(common.find(boot, "KX-DONE", gen=0)[0] is not None,
              "the guest did not finish (no KX-DONE)")
    common.check_exit(v, boot, ctx)
    v.evidence |= {"region": {"pa": hex(pa), "va": hex(lo), "size": size}, "linear": evidence,
                   "kcore": {"loaded": list(loaded.values()),
                             "unloaded": list(unloaded.values())}}
    v.metrics = {"region_translations": evidence["before"]["translations"],
                 "region_units": n}
    if not v.passed and v.first_bad_line is None:
        v.first_bad_line = common.first_bad(boot)
    return v
