"""kdump: crashkernel=256M (or the crashkernel= that --append gives, such as
crashkernel=512M,high crashkernel=128M,low), kexec -p (kexec -s -p with
kx.kexec=file), a pattern planted before a sysrq crash; the capture kernel
finds every chunk of it in /proc/vmcore, checks the ELF headers and
VMCOREINFO, and runs makedumpfile -c -d 31. The crash kernel regions are
those crashkernel= asks for, and the capture kernel is given them all
(linux,usable-memory-range, high first) and uses nothing else (its System
RAM). With kx.first=kexec the crashing kernel is one a kexec reboot
started, with the same crashkernel=."""
from .. import crashkernel, dtb, machine, ranges, userland
from . import common

EM_AARCH64 = 183
ET_CORE = 4
KEXEC_FIRST = "kx.first=kexec"
# With kx.first=kexec: the kernel that crashes gets a device tree whose RAM
# is all above 4 GiB (QEMU's virt RAM starts at 1 GiB, so only a kexec can
# give a kernel that), from 4 GiB to the end of the guest's RAM.
RAM_ABOVE_4G = "kx.ram=above-4g"


def high_dtb(ctx, spec, work):
    """QEMU's device tree for SPEC with its RAM moved above 4 GiB."""
    path = dtb.dump(spec, work / "high.dtb")
    dtb.move_memory(path, crashkernel.SZ_4G,
                    crashkernel.RAM_BASE + (ctx.mem << 20) - crashkernel.SZ_4G)
    return path


def run(ctx):
    image, parts = common.prepare(ctx)
    work = common.fresh_workdir(ctx)
    initrd = userland.build_initramfs(work / "gen0.cpio", parts)
    append = ctx.append("kx.gen=0", *crashkernel.args(ctx.append_extra), f"kx.tok={ctx.token}",
                        f"kx.mib={ctx.payload_mib}")
    spec = ctx.spec(image, initrd, append)
    extra = {"high.dtb": high_dtb(ctx, spec, work)} if ctx.asks(RAM_ABOVE_4G) else None
    spec.disk = common.data_disk(work / "disk.img", image, initrd, extra)
    boot = machine.boot(spec, ctx.log, ctx.boot_timeout() * 2)
    ctx.judge_args = [{"token": ctx.token, "chunks": (ctx.payload_mib << 20) // 4096}]
    return judge(boot, ctx, *ctx.judge_args)


def check_ranges(v, boot, ctx):
    """The regions reserved are what crashkernel= asks for; the capture kernel
    is given each of them, the one it runs in first, and uses only them."""
    want = crashkernel.expected(" ".join(crashkernel.given(ctx.append_extra)), ctx.mem,
                                ctx.asks(RAM_ABOVE_4G))
    _, cr = common.find(boot, "KX-CRASH-RANGES")
    _, us = common.find(boot, "KX-USABLE")
    _, sr = common.find(boot, "KX-SYSRAM")
    reserved = crashkernel.iomem_ranges(cr["ranges"]) if cr else None
    if v.require(cr is not None, "the crashed kernel did not report its crash kernel regions"):
        for reason in crashkernel.check_reserved(reserved, want):
            v.require(False, reason)
    if v.require(us is not None and sr is not None,
                 "the capture kernel did not report its usable memory") and reserved:
        usable = crashkernel.usable_ranges(us["ranges"])
        first = max(reserved)   # the one the capture kernel runs in: ,high's
        v.require(sorted(usable) == sorted(reserved) and usable[:1] == [first],
                  f"capture kernel given {crashkernel.fmt(usable)} in "
                  f"linux,usable-memory-range, expected {crashkernel.fmt(reserved)} "
                  f"with {crashkernel.fmt([first])} first")
        sysram = ranges.normalize(crashkernel.iomem_ranges(sr["ranges"]))
        v.require(sysram == ranges.normalize(reserved),
                  f"capture kernel's System RAM is {crashkernel.fmt(sysram)}, expected "
                  f"the crash kernel regions {crashkernel.fmt(reserved)}")
    return {"reserved": crashkernel.fmt(reserved or []), "expected": want,
            "usable": us and us["ranges"], "capture_system_ram": sr and sr["ranges"]}


def judge(boot, ctx, expect):
    v = common.Verdict()
    tok, chunks = expect["token"], expect["chunks"]
    main = common.check_boot_line(v, boot, ctx, gen=0, role="main")
    crash_gen = 0
    if ctx.asks(KEXEC_FIRST):
        crash_gen = 1
        execd, _ = common.find(boot, "KX-EXEC", gen=0)
        booted = common.find(boot, "KX-BOOT", gen=1, role="main")[0]
        if v.require(execd is not None and booted is not None and booted.t > execd.t,
                     "gen 0 did not kexec-reboot into the kernel that crashes"):
            main = common.check_boot_line(v, boot, ctx, gen=1, role="main")
    crash_loaded, cl = common.find(boot, "KX-CRASH-LOADED")
    planted, pf = common.find(boot, "KX-PLANTED")
    crash, _ = common.find(boot, "KX-CRASH", gen=crash_gen)
    capture = common.check_boot_line(v, boot, ctx, role="capture") if main else None
    v.require(crash_loaded is not None and cl["loaded"] == "1", "no crash kernel loaded")
    v.require(planted is not None and pf["token"] == tok and pf["chunks"] == str(chunks),
              f"pattern not planted as {chunks} chunks of token {tok}")
    v.require(crash is not None, f"gen {crash_gen} never triggered the crash")
    _, elf = common.find(boot, "KX-VMCORE-ELF")
    _, notes = common.find(boot, "KX-VMCORE-NOTES")
    _, pat = common.find(boot, "KX-VMCORE-PATTERN")
    _, mdf = common.find(boot, "KX-MAKEDUMPFILE")
    # KX-VMCOREINFO KEY=VALUE: the note's own lines; one without "=" is ignored.
    info = dict(ln.text.split(" ", 1)[1].split("=", 1) for ln in boot.lines
                if ln.text.startswith("KX-VMCOREINFO ") and "=" in ln.text)
    if v.require(elf is not None, "capture kernel: no ELF header read from /proc/vmcore"):
        v.require(elf["class"] == "2" and elf["data"] == "1" and elf["type"] == str(ET_CORE)
                  and elf["machine"] == str(EM_AARCH64),
                  f"/proc/vmcore is not a little-endian ELF64 aarch64 core: {elf}")
    v.require(notes is not None and notes["vmcoreinfo"] == "1", "no VMCOREINFO note")
    if main:
        v.require(info.get("OSRELEASE") == main["release"],
                  f"VMCOREINFO OSRELEASE={info.get('OSRELEASE')}, "
                  f"crashed kernel was {main['release']}")
    v.require(info.get("PAGESIZE") == str(ctx.page_size),
              f"VMCOREINFO PAGESIZE={info.get('PAGESIZE')}, expected {ctx.page_size}")
    if v.require(pat is not None, "capture kernel did not scan /proc/vmcore"):
        v.require(pat["token"] == tok, f"vmcore scanned for token {pat['token']}, not {tok}")
        v.require(pat["found"] == str(chunks) and pat["expected"] == str(chunks),
                  f"found {pat['found']} of {chunks} pattern chunks in /proc/vmcore")
        v.require(pat["corrupt"] == "0", f"{pat['corrupt']} pattern chunks were corrupt")
    if v.require(mdf is not None, "makedumpfile did not run"):
        v.require(mdf["rc"] == "0" and mdf["sig"] == "KDUMP" and int(mdf["bytes"]) > 0,
                  f"makedumpfile -c -d 31 failed: {mdf}")
    mode = "file" if ctx.asks("kx.kexec=file") else "load"
    v.require(common.find(boot, "KX-CRASH-MODE", mode=mode)[0] is not None,
              f"the crash kernel was not loaded with kexec_{mode}_load()")
    regions = check_ranges(v, boot, ctx)
    if ctx.asks(RAM_ABOVE_4G):
        _, ram = common.find(boot, "KX-RAM", gen=crash_gen)
        spans = crashkernel.iomem_ranges(ram["ranges"]) if ram else []
        v.require(spans and all(start >= crashkernel.SZ_4G for start, _ in spans),
                  f"the kernel that crashed had RAM {crashkernel.fmt(spans)}, "
                  "not all of it above 4 GiB")
        regions["crashed_kernel_ram"] = crashkernel.fmt(spans)
    done, _ = common.find(boot, "KX-DONE")
    v.require(done is not None, "the capture kernel did not finish")
    common.check_exit(v, boot, ctx, expected_panic="sysrq triggered crash")
    v.evidence |= {"crashed": main, "capture": capture, "vmcore_elf": elf,
                  "vmcoreinfo": info, "pattern": pat, "makedumpfile": mdf,
                  "expected": {"token": tok, "chunks": chunks, "page_size": ctx.page_size},
                  "crash_ranges": regions}
    if crash and capture:
        cap_line, _ = common.find(boot, "KX-BOOT", role="capture")
        v.metrics["crash_to_capture_userspace_s"] = round(cap_line.t - crash.t, 3)
    if not v.passed and v.first_bad_line is None:
        v.first_bad_line = common.first_bad(boot)
    return v
