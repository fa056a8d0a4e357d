"""bad-crashkernel: a crashkernel= that cannot be met boots to userspace,
says why, and reserves nothing: no "Crash kernel" in /proc/iomem.
One boot per case, in one log."""
import dataclasses

from .. import machine, userland
from . import common

# (crashkernel=, guest RAM in MiB, what the kernel must say). QEMU's virt RAM
# starts at 1 GiB: 2 GiB of it lies wholly below 4 GiB, 4 GiB has 1 GiB above.
# crashkernel=X,high without room above 4 GiB falls back below it (kdump
# cells prove that); only a size no RAM can hold reserves nothing.
CASES = (
    ("crashkernel=64G", 1024, "cannot allocate crashkernel"),
    ("crashkernel=foo", 1024, "crashkernel: memory value expected"),
    ("crashkernel=128M,low", 1024, "crashkernel=,low without crashkernel=,high: nothing reserved"),
    ("crashkernel=4G,high", 2048, "crashkernel=,high: cannot allocate 0x100000000 bytes"),
    ("crashkernel=512M,high crashkernel=8G,low", 4096,
     "crashkernel=,low: cannot allocate 0x200000000 bytes"),
)
BOOTS = len(CASES)


def run(ctx):
    image, parts = common.prepare(ctx)
    work = common.fresh_workdir(ctx)
    initrd = userland.build_initramfs(work / "initrd.cpio", parts)
    boots = []
    for words, mib, _ in CASES:
        spec = dataclasses.replace(ctx.spec(image, initrd, ctx.append("kx.gen=0", words)),
                                   mem=mib)
        boots.append(machine.boot(spec, ctx.log, ctx.boot_timeout()))
    ctx.judge_args = []
    return judge(*boots, ctx)


def judge(*args):
    *boots, ctx = args
    v = common.Verdict()
    results = {}
    for boot, (words, mib, message) in zip(boots, CASES):
        name = f"{words} ({mib} MiB)"
        common.check_boot_line(v, boot, ctx, gen=0, role="main")
        said = next((ln.text for ln in boot.lines if message in ln.text), None)
        v.require(said is not None, f"{name}: the kernel did not say {message!r}")
        _, cr = common.find(boot, "KX-CRASH-RANGES")
        if v.require(cr is not None, f"{name}: no crash kernel regions reported"):
            v.require(cr["ranges"] == "none",
                      f"{name}: reserved {cr['ranges']} in /proc/iomem, expected nothing")
        v.require(common.find(boot, "KX-DONE")[0] is not None,
                  f"{name}: the guest did not reach the end of its init")
        common.check_exit(v, boot, ctx, name)
        results[words] = {"message": said, "ranges": cr and cr["ranges"]}
    v.evidence["cases"] = results
    if not v.passed and v.first_bad_line is None:
        v.first_bad_line = common.first_bad(boots[-1])
    return v
