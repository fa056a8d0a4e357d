"""memory-hotplug: no memory goes offline, and no DIMM away, while a loaded
image's relocation tables map it; after kexec -u both work, and the reboot
that follows is sound.

4k-48 built with memory hotplug (the server variant), under uefi (virt
hot-plugs memory through ACPI), with 2 GiB of RAM and room for a 1 GiB
pc-dimm. When the guest says READY the host hot-adds the DIMM over QMP; the
guest first loads into them while they are offline, which must be refused
(EADDRNOTAVAIL), and a kexec_file_load(), which places its segments itself,
must succeed beside them; then it onlines them movable and loads (kexec_load) with every segment
inside the DIMM, then tries to offline them. At EJECT-LOADED the host asks
QEMU to remove the DIMM: the guest's ACPI eject must fail, so no
DEVICE_DELETED may come. Three rounds of unload / offline / online / load /
offline follow, then an unload, an offline and, at EJECT-UNLOADED, a removal
that must succeed. Last, a kexec reboot with a fresh token and payload.
Pass: all of that as stated, and the reboot's own evidence.
"""
import contextlib

from .. import machine
from ..qmp import Qmp
from . import common, kexec_reboot

VARIANT = "server"         # a distribution's config, memory hotplug included
RAM_MIB, DIMM_MIB = 2048, 1024
ROUNDS = 3
EJECT_WAIT_LOADED_S = 8     # the guest waits 10 s before it looks again
EJECT_WAIT_UNLOADED_S = 25


@contextlib.contextmanager
def with_dimm(spec, log, timeout, mib):
    """Boot SPEC (with dimm_mib and qmp set); when the guest says
    KX-MEMHP-READY, hot-add a pc-dimm of MIB, dimm0, over QMP. Yields the
    machine and its QMP connection."""
    with machine.Machine(spec, log, timeout) as m:
        qmp = Qmp(spec.qmp)
        try:
            if m.wait_for("KX-MEMHP-READY") is not None:
                qmp.execute("object-add", **{"qom-type": "memory-backend-ram", "id": "dimm0",
                                             "size": mib << 20})
                qmp.execute("device_add", driver="pc-dimm", id="dimm0", memdev="dimm0")
            yield m, qmp
        finally:
            qmp.close()


def run(ctx):
    ctx.mem = RAM_MIB
    image, spec, expect = kexec_reboot.setup(ctx, variant=VARIANT)
    spec.dimm_mib, spec.qmp = DIMM_MIB, ctx.workdir / "qmp.sock"
    spec.append += " memhp_default_state=offline"
    deleted = {}
    with with_dimm(spec, ctx.log, ctx.boot_timeout() * 3, DIMM_MIB) as (m, qmp):
        for tag, key, wait in (("KX-MEMHP-EJECT-LOADED", "loaded", EJECT_WAIT_LOADED_S),
                               ("KX-MEMHP-EJECT-UNLOADED", "unloaded", EJECT_WAIT_UNLOADED_S)):
            if m.wait_for(tag) is None:
                break
            qmp.execute("device_del", id="dimm0")
            deleted[key] = qmp.wait_event("DEVICE_DELETED", wait, device="dimm0") is not None
        m.wait_exit()
    ctx.judge_args = [expect, deleted]
    return judge(m.result, ctx, expect, deleted)


def judge(boot, ctx, expect, deleted):
    v = kexec_reboot.judge(boot, ctx, expect)
    added, af = common.find(boot, "KX-MEMHP-ADDED")
    if not v.require(added is not None, "the DIMM's memory blocks never appeared"):
        return v
    blocks = int(af["blocks"])
    ln, xf = common.find(boot, "KX-MEMHP-LOAD-OFFLINE")
    if v.require(ln is not None, "no load into the DIMM while it was offline"):
        v.require(xf["offline"] == str(blocks) and xf["in_dimm"] == "yes",
                  f"the load into offline memory proves nothing: {xf['offline']} of {blocks} "
                  f"blocks offline, segments {xf['segments']}")
        v.require(xf["rc"] != "0" and xf["loaded"] == "0",
                  f"kexec_load() accepted segments in offline memory ({xf['segments']})")
        v.require(xf["rc"] == "0" or xf["error"] == common.EADDRNOTAVAIL,
                  f"the load into offline memory failed with {xf['error']}, "
                  "not EADDRNOTAVAIL")
    ln, ff = common.find(boot, "KX-MEMHP-FILE-OFFLINE")
    if v.require(ln is not None, "no kexec_file_load() while the DIMM was offline"):
        v.require(ff["offline"] == str(blocks),
                  f"the file load beside offline memory proves nothing: {ff['offline']} of "
                  f"{blocks} blocks offline")
        v.require(ff["rc"] == "0" and ff["loaded"] == "1",
                  f"kexec_file_load() failed with {ff['error']} while the DIMM was offline: "
                  "it placed a segment in offline memory")
    v.require(blocks >= 1 and af["online"] == af["blocks"],
              f"{af['online']} of {blocks} DIMM blocks went online")
    for i in range(ROUNDS + 1):
        ln, lf = common.find(boot, "KX-MEMHP-LOADED", i=i)
        if v.require(ln is not None, f"round {i}: no load into the DIMM"):
            v.require(lf["rc"] == "0" and lf["loaded"] == "1" and lf["in_dimm"] == "yes",
                      f"round {i}: load rc={lf['rc']} loaded={lf['loaded']} "
                      f"in_dimm={lf['in_dimm']} segments={lf['segments']}")
    ln, of = common.find(boot, "KX-MEMHP-OFFLINE-LOADED")
    if v.require(ln is not None, "no offline attempt with the image loaded"):
        v.require(of["offlined"] == "0", f"{of['offlined']} of {of['of']} blocks went "
                                         "offline with an image loaded")
        v.require(int(of["refusals"]) >= 1, "the kernel log does not say why offlining failed")
    v.require(deleted.get("loaded") is False,
              "QEMU removed the DIMM while an image was loaded" if deleted.get("loaded")
              else "the removal with an image loaded was not tried")
    ln, ef = common.find(boot, "KX-MEMHP-AFTER-EJECT")
    v.require(ln is not None and ef["present"] == str(blocks) and ef["online"] == str(blocks),
              f"after the refused removal: {ef}")
    for i in range(1, ROUNDS + 1):
        ln, rf = common.find(boot, "KX-MEMHP-LOOP", i=i)
        if v.require(ln is not None, f"round {i} did not finish"):
            v.require(rf["offlined_unloaded"] == str(blocks) and rf["onlined"] == str(blocks),
                      f"round {i}: without an image {rf['offlined_unloaded']} blocks went "
                      f"offline and {rf['onlined']} online again, of {blocks}")
            v.require(rf["offlined_loaded"] == "0",
                      f"round {i}: {rf['offlined_loaded']} blocks went offline while loaded")
    ln, uf = common.find(boot, "KX-MEMHP-UNLOADED")
    v.require(ln is not None and uf["offlined"] == str(blocks) and uf["loaded"] == "0",
              f"after the last unload: {uf}")
    v.require(deleted.get("unloaded") is True, "QEMU did not remove the DIMM after kexec -u")
    ln, gf = common.find(boot, "KX-MEMHP-REMOVED")
    v.require(ln is not None and gf["gone"] == "yes", "the DIMM's blocks stayed after removal")
    v.evidence["memhp"] = {"blocks": blocks, "lo": af.get("lo"), "hi": af.get("hi"),
                           "deleted": deleted}
    if not v.passed and v.first_bad_line is None:
        v.first_bad_line = common.first_bad(boot)
    return v

