"""hibernate: swap on a virtio disk, a pattern held by a process, echo
disk > /sys/power/state; a new QEMU process resumes from the same disk and
the process re-verifies its pattern, in the boot whose id it remembers.

With kx.then=kexec the resumed system then kexec-reboots, a path operators
take after a resume: the
next kernel and an initramfs with a token and a payload of their own ride
in the first initramfs (the only disk is the swap), and the reboot is
judged as kexec-reboot judges one.

With kx.nomap=sub-page (DT profiles) both boots get QEMU's device tree with
a reserved-memory no-map region that starts and ends inside a page of every
granule, 4K included, with RAM before and after it in the same page: the
page must neither be restored through a mapping of its nomap bytes nor make
the resume fault."""
import secrets

from .. import machine, userland
from . import common, kexec_reboot, ptwalk

BOOTS = 2   # the hibernating boot and the resuming one, in one log
THEN_KEXEC = "kx.then=kexec"
SUB_PAGE_NOMAP = "kx.nomap=sub-page"


def add_nomap(ctx, first, second):
    """Boot FIRST and SECOND with QEMU's tree plus ptwalk's no-map hole."""
    if ctx.profile == "uefi":
        raise common.KxError(f"{SUB_PAGE_NOMAP} needs a DT profile: under uefi the "
                             "firmware's memory map decides")
    # Half a 4K page in at each end, so that no granule's page lines up.
    start, end = ptwalk.add_nomap_hole(ctx, first, inset=0x800)
    second.dtb = first.dtb
    return [start, end]


def next_kernel(ctx, image, parts, work):
    """{initramfs path: source} carrying the kexec after resume, and what
    the reboot must show (a token of its own: the resuming boot must not
    be able to learn the hibernated one's from its initramfs)."""
    nxt, expect = kexec_reboot.next_initramfs(ctx, parts, work, secrets.token_hex(8))
    return {"kx/Image": image, "kx/next.cpio": nxt}, expect


def run(ctx):
    image, parts = common.prepare(ctx)
    work = common.fresh_workdir(ctx)
    extra, reboot = next_kernel(ctx, image, parts, work) if ctx.asks(THEN_KEXEC) else ({}, None)
    initrd = userland.build_initramfs(work / "initrd.cpio", parts, extra)
    swap = work / "swap.img"
    with open(swap, "wb") as f:
        f.truncate((ctx.mem + 512) << 20)
    first = ctx.spec(image, initrd, ctx.append("kx.gen=0", f"kx.tok={ctx.token}",
                                               f"kx.mib={ctx.payload_mib}"), swap)
    # The resuming boot is not told the token: it can only come from the image.
    second = ctx.spec(image, initrd, ctx.append("kx.gen=0", "kx.role=resume"), swap)
    nomap = add_nomap(ctx, first, second) if ctx.asks(SUB_PAGE_NOMAP) else None
    hib = machine.boot(first, ctx.log, ctx.boot_timeout())
    res = machine.boot(second, ctx.log, ctx.boot_timeout() * (2 if reboot else 1))
    expect = {"token": ctx.token, "chunks": (ctx.payload_mib << 20) // 4096}
    if nomap:
        expect["nomap"] = nomap
    ctx.judge_args = [expect | ({"kexec": reboot} if reboot else {})]
    return judge(hib, res, ctx, *ctx.judge_args)


def judge(hib, res, ctx, expect):
    v = common.Verdict()
    tok, chunks = expect["token"], expect["chunks"]
    common.check_boot_line(v, hib, ctx, gen=0, role="main")
    _, planted = common.find(hib, "KX-PLANTED")
    hline, hf = common.find(hib, "KX-HIBERNATE")
    v.require(planted is not None and planted["token"] == tok
              and planted["chunks"] == str(chunks),
              f"pattern not planted as {chunks} chunks of token {tok}")
    v.require(hline is not None, "the guest never started hibernating")
    v.require(common.find(hib, "KX-RESUMED")[0] is None,
              "the hibernating boot carried on instead of powering off")
    v.require(not hib.timed_out and hib.exit_code == 0,
              f"the hibernating boot did not power off by itself "
              f"(exit {hib.exit_code}, timed out {hib.timed_out})")
    common.check_exit(v, hib, ctx, "hibernating boot")
    common.check_boot_line(v, res, ctx, role="resume")
    _, held = common.find(res, "KX-HELD")
    rline, rf = common.find(res, "KX-RESUMED")
    v.require(common.find(res, "KX-RESUME-NONE")[0] is None, "no image was resumed")
    if v.require(held is not None, "the holding process did not report after resume"):
        v.require(held["token"] == tok and held["intact"] == str(chunks)
                  and held["chunks"] == str(chunks),
                  f"after resume {held['intact']} of {chunks} chunks were intact "
                  f"(token {held['token']})")
    if v.require(rline is not None, "the resumed image did not report"):
        v.require(hf is not None and rf["boot_id"] == hf["boot_id"],
                  "the resumed boot id differs from the hibernated one")
        _, rb = common.find(res, "KX-BOOT", role="resume")
        v.require(rb is None or rf["boot_id"] != rb["boot_id"],
                  "the resumed boot id is the resuming kernel's own: nothing was restored")
        v.require(rf["token"] == tok, f"resumed token {rf['token']}, expected {tok}")
        v.require(rf["el"] == str(ctx.expected_el),
                  f"resumed at EL{rf['el']}, expected EL{ctx.expected_el}")
    v.require(common.find(res, "KX-DONE")[0] is not None,
              "the resumed system did not finish (no KX-DONE)")
    if ctx.asks(THEN_KEXEC) and v.require("kexec" in expect, "kx.then=kexec, but nothing to expect "
                                                        "of the reboot"):
        after = common.Verdict()
        _, gens = kexec_reboot.check_generations(after, res, ctx, expect["kexec"])
        for reason in after.reasons:
            v.require(False, f"kexec after resume: {reason}")
        v.evidence["kexec_after_resume"] = gens
    if ctx.asks(SUB_PAGE_NOMAP):
        check_nomap(v, expect.get("nomap"), {"hibernating": hib, "resuming": res}, ctx)
    common.check_exit(v, res, ctx, "resuming boot")
    v.evidence |= {"hibernated": hf, "planted": planted, "held": held, "resumed": rf,
                  "expected": {"token": tok, "chunks": chunks}}
    if hline:
        v.metrics["hibernate_to_poweroff_s"] = round(hib.seconds - hline.t, 3)
    if rline:
        v.metrics["resume_boot_to_report_s"] = round(rline.t, 3)
    if not v.passed and v.first_bad_line is None:
        v.first_bad_line = common.first_bad(res if hline else hib)
    return v


def check_nomap(v, added, boots, ctx):
    """Each boot ran with the no-map region ADDED, which shares a page with
    RAM at both ends on this config's granule."""
    if not v.require(added, f"{SUB_PAGE_NOMAP}, but no region was added"):
        return
    start, end = added
    v.require(start % ctx.page_size and end % ctx.page_size,
              f"the no-map region {start:#x}-{end:#x} lines up with a page: it proves nothing")
    for name, boot in boots.items():
        regions = ptwalk.reserved_memory([ln.text for ln in boot.lines])
        v.require(any(r["nomap"] and r["range"] == (start, end) for r in regions),
                  f"{name} boot: no no-map region {start:#x}-{end:#x} in its device tree: "
                  f"{regions}")
    v.evidence["nomap_added"] = [hex(start), hex(end)]
