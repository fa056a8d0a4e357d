"""One module per scenario; each has run(ctx) -> Verdict and a pure judge()."""
from . import (bad_crashkernel, crash_protect, crash_region_load, crash_shrink, hibernate,
               kdump, kexec_chain, kexec_file, kexec_reboot, kunit, memory_hotplug,
               mmu_state, ptdump, ptwalk, reloc_fault, selftests)

SCENARIOS = {
    "kexec-reboot": kexec_reboot,
    "kexec-file": kexec_file,
    "kexec-chain": kexec_chain,
    "kdump": kdump,
    "crash-protect": crash_protect,
    "bad-crashkernel": bad_crashkernel,
    "crash-shrink": crash_shrink,
    "crash-region-load": crash_region_load,
    "hibernate": hibernate,
    "kunit": kunit,
    "ptdump": ptdump,
    "mmu-state": mmu_state,
    "ptwalk": ptwalk,
    "reloc-fault": reloc_fault,
    "memory-hotplug": memory_hotplug,
    "selftests": selftests,
}
