"""What every scenario shares: the run context, evidence parsing, verdicts."""
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import evidence, kbuild, machine, userland
from ..initramfs import Cpio
from ..util import BUILD, KxError, sha256_file
from . import features

RUNS = BUILD / "runs"
CONSOLE = "console=ttyAMA0 earlycon panic=1"
HIGH_MEM_MIB = 6144
# kexec-tools' "kexec_load failed: " message for EADDRNOTAVAIL, as the guest
# reports it (strerror(), spaces made underscores).
EADDRNOTAVAIL = "Cannot_assign_requested_address"


@dataclass
class Context:
    scenario: str
    kernel: str = "series"
    config: str = "4k-48"
    profile: str = "dt-el2"
    cpu: str = None
    mem: int = None
    smp: int = 1
    payload_mib: int = 32
    gens: int = 1
    timeout: int = None
    append_extra: str = ""
    tree: str = None    # build the kernel from this git tree instead (./kx run --tree)
    variant: str = ""   # build variant (configs/VARIANT.config), e.g. server
    run_id: str = ""
    started: float = field(default_factory=time.time)

    def __post_init__(self):
        if self.tree:   # never mistaken for a result of the kernel it was not built as
            self.kernel, self.tree = "tree", str(Path(self.tree).resolve())
        if self.profile not in machine.PROFILES:
            raise KxError(f"unknown profile {self.profile!r}: "
                          f"choose from {', '.join(machine.PROFILES)}")
        kbuild.fragment(self.config, self.variant)  # validates the names
        self.cpu = self.cpu or machine.default_cpu(self.config)
        # crashkernel=,high wants memory above 4 GiB: QEMU's virt RAM starts at 1 GiB.
        high = HIGH_MEM_MIB if ",high" in self.append_extra else 0
        self.mem = machine.check_mem(self.mem or max(1024, self.payload_mib * 4 + 512, high))
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(self.started))
        self.run_id = self.run_id or (f"{stamp}-{self.scenario}-{self.kernel}-{self.config}-"
                                      f"{self.profile}-{self.cpu}-{secrets.token_hex(3)}")
        self.workdir = RUNS / self.run_id
        self.log = BUILD / "results" / f"{self.run_id}.log"
        self.token = secrets.token_hex(8)
        self.image = None       # the kernel that ran: its build record goes in the result
        self.judge_args = None  # what the judge took besides the boots (./kx judge)

    @property
    def expected_el(self):
        return machine.profile_el(self.profile)

    @property
    def efi(self):
        return "yes" if self.profile == "uefi" else "no"

    @property
    def page_size(self):
        return {"4k": 4096, "16k": 16384, "64k": 65536}[self.config.split("-")[0]]

    def boot_timeout(self):
        # cpu max emulates more; KASAN, lockdep and kmemleak (the debug
        # variant) make every kernel several times slower.
        slow = (3 if self.cpu == "max" else 1) * (3 if self.variant == "debug" else 1)
        # Each boot initialises a struct page per page of RAM: a 4K guest of
        # 64 GiB spends about 6 s of each boot on it here; allow 2 s per GiB.
        # A payload is read, loaded, copied and checked at about 0.9 s per MiB
        # under TCG (512 MiB: 440 s); allow 2 s per MiB.
        return self.timeout or (120 + 2 * self.payload_mib + 2 * (self.mem >> 10)) * slow

    def spec(self, image, initrd, append, disk=None):
        return machine.Spec(kernel=image, initrd=initrd, append=append, profile=self.profile,
                            cpu=self.cpu, mem=self.mem, smp=self.smp, disk=disk,
                            workdir=self.workdir)

    def asks(self, word):
        """Whether --append holds WORD (a kernel argument or a kx. word)."""
        return word in self.append_extra.split()

    def append(self, *words):
        return " ".join([CONSOLE, f"kx.sc={self.scenario}", *words,
                         *self.append_extra.split()])


@dataclass
class Verdict:
    passed: bool = True
    reasons: list = field(default_factory=list)
    evidence: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    first_bad_line: str = None
    status: str = None      # runner.STATUSES, set by the runner
    crash: str = None       # the first unexpected panic/oops/BUG line
    timed_out: bool = False

    def require(self, ok, reason):
        if not ok:
            self.passed = False
            self.reasons.append(reason)
        return ok


fields = evidence.fields


def find(boot, tag, **match):
    """The first well-formed line of TAG (exact first word) whose fields
    include MATCH. Malformed lines are skipped here and are reasons in
    check_evidence_lines: a judge never indexes a key that is not there."""
    for ln in boot.lines:
        f = evidence.parse(ln.text, tag)
        if f is not None and all(f.get(k) == str(v) for k, v in match.items()):
            return ln, f
    return None, None


def check_evidence_lines(v, boot, name="boot"):
    """Every declared KX- line in BOOT is well formed (kxbench/evidence.py)."""
    for ln in boot.lines:
        bad = evidence.problems(ln.text)
        v.require(not bad, f"{name}: malformed {evidence.tag_of(ln.text)} line "
                           f"({', '.join(bad)}): {ln.text!r}")


BAD_MARKERS = ("KX-FAIL", "Kernel panic", "Internal error", "Unable to handle",
               "Call trace:", "BUG:", "WARNING:", "SError")


def first_bad(boot):
    """The first line that went wrong, or the last line the guest printed."""
    for ln in boot.lines:
        if any(m in ln.text for m in BAD_MARKERS):
            return ln.text
    return boot.lines[-1].text if boot.lines else "(the guest printed nothing)"


KLOG_COUNTS = ("warnings", "bugs", "oopses", "kasan", "kmemleak")


def check_kernel_log(v, boot, name="boot"):
    """Every kernel that booted in BOOT reported its log's errors (KX-KLOG,
    counted from the log buffer, not the console), and they are all zero."""
    check_evidence_lines(v, boot, name)
    boots = [ln for ln in boot.lines if evidence.tag_of(ln.text) == "KX-BOOT"]
    reports = [f for f in (evidence.parse(ln.text, "KX-KLOG") for ln in boot.lines) if f]
    firsts = {(f["gen"], f["role"]): ln.text.split(" ", 3)[-1] for ln in boot.lines
              for f in [evidence.parse(ln.text, "KX-KLOG-FIRST")] if f}
    v.require(len(reports) >= len(boots),
              f"{name}: {len(boots)} kernels booted, {len(reports)} reported their kernel log")
    for r in reports:
        bad = {k: r.get(k) for k in KLOG_COUNTS if r.get(k) != "0"}
        first = firsts.get((r["gen"], r["role"]))
        v.require(not bad, f"{name}: gen {r['gen']} {r['role']} kernel log: " +
                  ", ".join(f"{k}={x}" for k, x in bad.items()) +
                  (f"; first: {first}" if first else ""))
    v.evidence.setdefault("kernel_log", []).extend(reports)


# What a kernel prints on the console (at any loglevel) when it dies.
CRASH = re.compile(r"Kernel panic - not syncing|Internal error: |Unable to handle kernel|"
                   r"kernel BUG at|BUG: ")


def check_crash(v, boot, name="boot", expected_panic=None):
    """No kernel in BOOT crashed, unless with EXPECTED_PANIC (kdump's sysrq)."""
    for ln in boot.lines:    # "#" lines are test output, which may quote the log
        if ln.text.startswith("#") or not CRASH.search(ln.text):
            continue
        if not (expected_panic and expected_panic in ln.text):
            v.crash = v.crash or ln.text
            v.require(False, f"{name}: a kernel crashed: {ln.text.strip()!r}")
            return


def check_exit(v, boot, ctx, name="boot", expected_panic=None):
    """The QEMU process must have ended by itself, not by our timeout, no
    kernel may have crashed, their logs must hold no error, and each ran
    with the features CTX's cell asks for."""
    check_kernel_log(v, boot, name)
    features.check(v, boot, ctx, name)
    check_crash(v, boot, name, expected_panic)
    if boot.timed_out:
        v.timed_out = True
        where = f"; the CPUs then: {boot.cpus_at_timeout}" if boot.cpus_at_timeout else ""
        v.require(False, f"{name}: timed out after {boot.seconds:.0f} s; "
                         f"last line: {first_bad(boot)!r}{where}")
    elif not boot.lines:
        v.require(False, f"{name}: the guest printed nothing")
    if v.first_bad_line is None and not v.passed:
        v.first_bad_line = first_bad(boot)


def check_boot_line(v, boot, ctx, **match):
    ln, f = find(boot, "KX-BOOT", **match)
    desc = " ".join(f"{k}={x}" for k, x in match.items())
    if not v.require(ln is not None, f"no KX-BOOT line with {desc}"):
        return None
    v.require(f["el"] == str(ctx.expected_el),
              f"KX-BOOT {desc}: entered at EL{f['el']}, expected EL{ctx.expected_el}")
    v.require(f["efi"] == ctx.efi, f"KX-BOOT {desc}: efi={f['efi']}, expected {ctx.efi}")
    cpus = 1 if f["role"] == "capture" else ctx.smp     # a capture kernel has maxcpus=1
    v.require(f["cpus"] == str(cpus), f"KX-BOOT {desc}: {f['cpus']} CPUs online, "
                                      f"expected {cpus}")
    return f


def fresh_workdir(ctx):
    if ctx.workdir.exists():
        shutil.rmtree(ctx.workdir)
    ctx.workdir.mkdir(parents=True)
    return ctx.workdir


def cleanup(ctx):
    """Drop the big artifacts (payloads, disks); the log and JSON stay."""
    if ctx.workdir.exists() and not os.environ.get("KX_KEEP"):
        shutil.rmtree(ctx.workdir)


def payload(ctx, path):
    """Write an incompressible payload; return its sha256."""
    with open(path, "wb") as f:
        for _ in range(ctx.payload_mib):
            f.write(os.urandom(1 << 20))
    return sha256_file(path)


def data_disk(path, image, next_initrd, extra=None):
    """The guest reads the next kernel and initramfs from this cpio disk, and
    EXTRA ({name: file}) beside them."""
    with Cpio(path) as cpio:
        cpio.file("Image", image)
        cpio.file("next.cpio", next_initrd)
        for name, src in (extra or {}).items():
            cpio.file(name, src)
    return Path(path)


def build(ctx, variant=None):
    """Build (or reuse) CTX's kernel, of VARIANT when the scenario needs its
    own (kunit, server), else of ctx.variant; remember it for the result."""
    if variant and ctx.variant and ctx.variant != variant:
        raise KxError(f"{ctx.scenario} needs the {variant} build variant, "
                      f"not {ctx.variant}")
    ctx.image = kbuild.build(ctx.kernel, ctx.config, variant=variant or ctx.variant,
                             tree_dir=ctx.tree)
    return ctx.image


def prepare(ctx, variant=None):
    """Build (or reuse) the kernel and the userland; return (image, parts)."""
    return build(ctx, variant), userland.prepare()
