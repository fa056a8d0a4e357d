"""crash-region-load: with a crash kernel loaded, kexec_load() of a normal
image whose segments all lie in the crash kernel region must be refused with
EADDRNOTAVAIL, and the system must carry on: a load with kexec-tools'
default placement then reboots, judged as kexec-reboot judges it.

The protection unmaps the region from the linear map while a crash kernel is
loaded, so the relocation's copy of the linear map cannot reach it: an image
accepted there could only fault at kexec -e, after the old kernel is gone.
The guest boots with crashkernel=256M and rodata=on unless --append says
otherwise (rodata=full maps the linear map with pages, which the copy
revalidates; 4K rodata=on keeps 2 MiB blocks, which protection clears).
"""
from .. import crashkernel, machine
from . import common, kexec_reboot



def run(ctx):
    image, spec, expect = kexec_reboot.setup(ctx)
    rodata = [] if "rodata=" in ctx.append_extra else ["rodata=on"]
    spec.append = ctx.append("kx.gen=0", *crashkernel.args(ctx.append_extra), *rodata)
    boot = machine.boot(spec, ctx.log, ctx.boot_timeout())
    ctx.judge_args = [expect]
    return judge(boot, ctx, expect)


def judge(boot, ctx, expect):
    v = common.Verdict()
    _, res = common.find(boot, "KX-CRASHRES")
    v.require(res is not None and res["range"] != "none", "no crash kernel region")
    _, crash = common.find(boot, "KX-CRASH-LOADED")
    v.require(crash is not None and crash["loaded"] == "1", "kexec -p loaded no crash kernel")
    _, into = common.find(boot, "KX-CRASH-REGION-LOAD")
    if v.require(into is not None, "no load into the crash kernel region was tried"):
        v.require(into["in_region"] == "yes",
                  f"kexec-tools did not put every segment in the crash kernel region "
                  f"{res and res['range']}: {into['segments']}: the check proves nothing")
        v.require(into["rc"] != "0" and into["loaded"] == "0",
                  f"kexec_load() accepted a normal image inside the protected crash kernel "
                  f"region (segments {into['segments']})")
        v.require(into["rc"] == "0" or into["error"] == common.EADDRNOTAVAIL,
                  f"kexec_load() refused the image with {into['error']}, not EADDRNOTAVAIL")
    _, gens = kexec_reboot.check_generations(v, boot, ctx, expect)
    common.check_exit(v, boot, ctx)
    v.evidence |= {"crash_region": res, "crash_loaded": crash, "load_into_region": into,
                   "generations": gens}
    if not v.passed and v.first_bad_line is None:
        v.first_bad_line = common.first_bad(boot)
    return v
