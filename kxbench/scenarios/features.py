"""The features a cell's kernels must run with.

Every boot prints KX-FEATURES: whether the kernel runs at EL2 under VHE,
who owns EL2 (KVM with VHE, KVM without it, or nobody), whether KPTI and
pointer authentication are on, and the VA size the kernel really uses. A
cell of the server build variant requires each of them to be what its CPU,
profile and command line give; any cell whose kernel takes VHE where the
CPU offers it (every line but v5.10, see runs_vhe()) requires VHE; a
64k-52 cell requires 52-bit VA on a CPU with LVA (max) and the 48-bit
fallback on one without. With
debug_pagealloc=on, every boot must show free memory unmapped from the
linear map (KX-LINEAR). With nokaslr every kernel must say KASLR was
disabled on the command line; with kx.kaslr=on (a workbench word the guest
ignores) the first kernel, the one that kexecs, must run randomized
(KX-KASLR). A cell of the debug build variant requires every
kernel to show KASAN, kmemleak, lockdep and fault injection working
(checkers=), so that its zero reports are evidence. Other cells
record the lines without requiring them, so that logs from before them
still judge.
"""
from .. import evidence, kbuild

VA_BITS = {"4k-48": 48, "4k-39": 39, "16k-47": 47, "64k-48": 48, "64k-52": 52}
ON, OFF = ("1", "on", "y", "yes", "true"), ("0", "off", "n", "no", "false")


def kernel_arg(ctx, name):
    """The value of kernel argument NAME in the cell's --append, or None."""
    values = [w.split("=", 1)[1] for w in ctx.append_extra.split() if w.startswith(name + "=")]
    return values[-1] if values else None


def yes(flag):
    return "yes" if flag else "no"


def runs_vhe(ctx):
    """Whether the cell's kernels run at EL2 under VHE: the CPU has it (max),
    the profile enters at EL2, and the kernel takes it. Every line since
    v5.12 takes VHE wherever it is offered (ARM64_VHE is gone); a v5.10
    kernel only when built with ARM64_VHE, as the server variant is."""
    return ctx.cpu == "max" and ctx.expected_el == 2 and (
        ctx.variant == "server" or kbuild.line_of(ctx.kernel, ctx.tree) != "5.10")


def expected(ctx):
    """{KX-FEATURES key: value} this cell's kernels must report."""
    want = {}
    if ctx.config == "64k-52":
        want["va_bits"] = "52" if ctx.cpu == "max" else "48"
    vhe = runs_vhe(ctx)
    if vhe:
        want["vhe"] = "yes"
    if ctx.variant == "server":
        el2 = ctx.expected_el == 2
        want |= {"vhe": yes(vhe), "kvm": "vhe" if vhe else "nvhe" if el2 else "none",
                 "pac": yes(ctx.cpu == "max")}
        want.setdefault("va_bits", str(VA_BITS[ctx.config]))
        kpti = kernel_arg(ctx, "kpti")
        if kpti in ON + OFF:    # else KASLR and the CPU decide: recorded only
            want["kpti"] = yes(kpti in ON)
    if ctx.variant == "debug":
        want["checkers"] = DEBUG_CHECKERS
    return want


# What every kernel of the debug build variant must show working.
DEBUG_CHECKERS = "kasan,kmemleak,lockdep,faults"
KASLR_ON = "kx.kaslr=on"


def expected_kaslr(ctx):
    """(state, the (gen, role) it applies to, or None for every kernel)."""
    if ctx.asks("nokaslr"):
        return "cmdline", None
    if ctx.asks(KASLR_ON):
        return "enabled", ("0", "main")
    return None, None


def debug_pagealloc(ctx):
    return kernel_arg(ctx, "debug_pagealloc") in ON


def boots_of(boot):
    """(gen, role) of every kernel that booted in BOOT."""
    return [(f["gen"], f["role"]) for f in
            (evidence.parse(ln.text, "KX-BOOT") for ln in boot.lines) if f]


def lines_of(boot, tag):
    """{(gen, role): fields} of BOOT's TAG lines."""
    return {(f["gen"], f["role"]): f for f in
            (evidence.parse(ln.text, tag) for ln in boot.lines) if f}


def check(v, boot, ctx, name="boot"):
    """Each kernel of BOOT reported the features CTX requires."""
    feats = lines_of(boot, "KX-FEATURES")
    v.evidence.setdefault("features", []).extend(feats.values())
    want = expected(ctx)
    linear = lines_of(boot, "KX-LINEAR") if debug_pagealloc(ctx) else {}
    v.evidence.setdefault("linear", []).extend(linear.values())
    kaslr, kaslr_of = expected_kaslr(ctx), lines_of(boot, "KX-KASLR")
    v.evidence.setdefault("kaslr", []).extend(kaslr_of.values())
    for gen, role in boots_of(boot):
        who = f"{name}: gen {gen} {role}"
        if kaslr[0] and kaslr[1] in (None, (gen, role)):
            k = kaslr_of.get((gen, role))
            if v.require(k is not None, f"{who} printed no KX-KASLR line"):
                v.require(k["state"] == kaslr[0],
                          f"{who}: KASLR {k['state']}, the cell wants {kaslr[0]}")
        f = feats.get((gen, role))
        if want and v.require(f is not None, f"{who} printed no KX-FEATURES line"):
            bad = {k: f.get(k, "(not reported)") for k, x in want.items() if f.get(k) != x}
            v.require(not bad, f"{who} runs with " +
                      ", ".join(f"{k}={x} (the cell wants {want[k]})" for k, x in bad.items()))
        if not debug_pagealloc(ctx):
            continue
        lin = linear.get((gen, role))
        if v.require(lin is not None, f"{who}: debug_pagealloc=on, but no KX-LINEAR line"):
            # Free pages are unmapped; most of MemFree must be missing from it.
            v.require(int(lin["mapped_kb"]) > 0 and
                      2 * int(lin["unmapped_kb"]) >= int(lin["memfree_kb"]),
                      f"{who}: debug_pagealloc=on, but only {lin['unmapped_kb']} KiB of the "
                      f"linear map is unmapped with {lin['memfree_kb']} KiB free")
