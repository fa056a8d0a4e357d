"""guest/init's klog_report, run by the host's sh on a made-up kernel log:
WARN()s, lockdep's reports, BUGs, oopses, KASAN and kmemleak are counted."""
import subprocess

from kxbench import evidence
from test_evidence import INIT, shell_functions

LOG = """\
[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x411fd070]
[    1.000000] WARNING: CPU: 0 PID: 1 at mm/page_alloc.c:4920 __alloc_pages+0x1/0x2
[    2.000000] WARNING: possible circular locking dependency detected
[    2.500000] ACPI: no WARNING: here, only a word
[    3.000000] BUG: KASAN: use-after-free in kimage_free+0x10/0x20
[    4.000000] Internal error: Oops: 96000004 [#1] PREEMPT SMP
[    5.000000] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)
"""


def klog_report(log):
    funcs = shell_functions(INIT)
    script = "\n".join(f"{name}() {{{funcs[name]}}}" for name in ("klog_count", "klog_report"))
    script += f"\ndmesg() {{ cat <<'EOF'\n{log}EOF\n}}\ngen=1 role=main\nklog_report\n"
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def test_every_kind_of_report_is_counted_and_the_first_named():
    lines = klog_report(LOG)
    counts = evidence.parse(lines[0], "KX-KLOG")
    assert counts == {"gen": "1", "role": "main", "warnings": "2", "bugs": "1", "oopses": "1",
                      "kasan": "1", "kmemleak": "1"}, lines
    assert lines[1].startswith("KX-KLOG-FIRST gen=1 role=main [    1.000000] WARNING: CPU")


def test_a_clean_log_counts_nothing():
    lines = klog_report("[    0.000000] Booting Linux on physical CPU 0x0\n")
    assert lines == ["KX-KLOG gen=1 role=main warnings=0 bugs=0 oopses=0 kasan=0 kmemleak=0"]
