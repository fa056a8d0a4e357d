"""make demo: build series, kexec reboot on dt-el2, kdump; a short summary."""
from . import deps, kbuild, userland
from .runner import one_line, run_scenario


def main():
    deps.ensure_host_packages()
    userland.prepare()
    image = kbuild.build("series", "4k-48")
    print(f"kernel: series 4k-48 -> {image}\n")
    reboot, rpath, rctx = run_scenario("kexec-reboot", profile="dt-el2")
    dump, dpath, dctx = run_scenario("kdump", profile="dt-el2")
    print(one_line(reboot, rctx, rpath))
    print(one_line(dump, dctx, dpath))
    if reboot.passed:
        g, m = reboot.evidence["generations"][0], reboot.metrics
        print(f"\nkexec reboot (dt-el2, kexec_load, {rctx.payload_mib} MiB payload):\n"
              f"  the new kernel reported token {g['token']} (sent {rctx.token}),\n"
              f"  payload sha256 {g['sha256'][:16]}... (matches what the host wrote),\n"
              f"  entered at EL{g['el']} (expected EL{rctx.expected_el})\n"
              f"  kexec -l took {m['load_s']:.3f} s in the guest; MemFree fell by "
              f"{m['memfree_before_load_kb'] - m['memfree_after_load_kb']} KiB for "
              f"{g['segment_kb']} KiB of segments ({m['load_overhead_kb']} KiB overhead)\n"
              f"  kexec -e to the new kernel's userspace: {m['exec_to_userspace_s']:.2f} s "
              f"(host clock, QEMU TCG: no cache model, not a hardware figure)")
    if dump.passed:
        p, mdf = dump.evidence["pattern"], dump.evidence["makedumpfile"]
        print(f"\nkdump (crashkernel=256M, {dctx.payload_mib} MiB pattern):\n"
              f"  capture kernel found {p['found']}/{p['expected']} pattern chunks intact "
              f"in /proc/vmcore ({p['scanned_mib']} MiB scanned)\n"
              f"  VMCOREINFO: {dump.evidence['vmcoreinfo'].get('OSRELEASE')}, "
              f"PAGESIZE={dump.evidence['vmcoreinfo'].get('PAGESIZE')}\n"
              f"  makedumpfile -c -d 31: rc {mdf['rc']}, {mdf['bytes']} bytes, "
              f"signature {mdf['sig']}\n"
              f"  crash to capture userspace: "
              f"{dump.metrics.get('crash_to_capture_userspace_s')} s")
    print(f"\nlogs: {rctx.log}\n      {dctx.log}")
    return 0 if reboot.passed and dump.passed else 1
