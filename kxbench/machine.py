"""QEMU virt machines: profiles, serial capture, hard timeouts.

Every line the guest prints is stamped with the host's monotonic clock
when it arrives, and written to the run's log as it arrives, so a guest
that hangs still leaves everything it said, and, before it is killed, where
its CPUs were (QEMU's registers, through a QMP socket of the workbench's).
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from .qmp import Qmp
from .util import KxError

PROFILES = ("dt-el1", "dt-el2", "uefi")
AAVMF_CODE = Path("/usr/share/AAVMF/AAVMF_CODE.fd")
AAVMF_VARS = Path("/usr/share/AAVMF/AAVMF_VARS.fd")
# Configs whose granule or VA size Cortex-A57 lacks (no 16K granule, no LVA).
NEEDS_MAX = {"16k-47", "64k-52"}
# Guest RAM in MiB. Below the minimum the kernel, the initramfs and a payload
# do not fit; the maximum is the largest guest booted and measured here
# (64 GiB, to show that the relocation tables do not grow with RAM).
MEM_MIN, MEM_MAX = 256, 65536


def default_cpu(config):
    return "max" if config in NEEDS_MAX else "cortex-a57"


def check_mem(mib):
    """MIB as an int if it is a guest RAM size the workbench can boot."""
    try:
        mib = int(mib)
    except (TypeError, ValueError):
        raise KxError(f"guest RAM {mib!r} is not a whole number of MiB")
    if not MEM_MIN <= mib <= MEM_MAX:
        raise KxError(f"guest RAM {mib} MiB is out of range: give {MEM_MIN} to {MEM_MAX} "
                      f"MiB (65536 is 64 GiB)")
    return mib


def profile_el(profile):
    """The exception level the kernel is entered at under PROFILE."""
    return 1 if profile == "dt-el1" else 2


@dataclass
class Line:
    t: float      # host monotonic seconds since QEMU started
    text: str


@dataclass
class Boot:
    lines: list = field(default_factory=list)
    exit_code: int = None
    timed_out: bool = False
    seconds: float = 0.0
    log: Path = None
    cpus_at_timeout: str = ""   # cpu_summary() of the registers recorded then

    def first(self, prefix):
        return next((ln for ln in self.lines if ln.text.startswith(prefix)), None)

    def all(self, prefix):
        return [ln for ln in self.lines if ln.text.startswith(prefix)]


@dataclass
class Spec:
    kernel: Path
    initrd: Path
    append: str
    profile: str = "dt-el2"
    cpu: str = "cortex-a57"
    mem: int = 1024
    smp: int = 1
    disk: Path = None
    workdir: Path = None
    gdb_port: int = None
    dtb: Path = None    # replaces QEMU's own device tree (DT profiles only)
    dimm_mib: int = 0   # room and a slot for a pc-dimm of this size (ACPI hotplug, uefi)
    qmp: Path = None    # QEMU's QMP socket, to hot-add and remove that DIMM
    extra: list = field(default_factory=list)


def qemu_command(spec):
    if spec.profile not in PROFILES:
        raise KxError(f"unknown profile {spec.profile!r}: choose from {', '.join(PROFILES)}")
    machine = "virt,gic-version=3"
    machine += ",virtualization=off" if spec.profile == "dt-el1" else ",virtualization=on"
    if spec.profile != "uefi":
        # Once enabled, GICv3 LPI tables cannot move, and only UEFI's
        # memreserve table keeps the next kernel from reusing their memory
        # (a kexec'd kernel resets the old property table wherever it lies).
        # The DT profiles have no UEFI, so they get no ITS and no LPIs.
        machine += ",its=off"
    cpu = "max,pauth-impdef=on" if spec.cpu == "max" else spec.cpu
    # RAM from a backend that reserves no swap (MAP_NORESERVE): the host commits
    # only what the guest touches, so a 64 GiB guest boots on a smaller host,
    # where plain -m fails to allocate. -m must still name the same size.
    mem = f"{check_mem(spec.mem)}M"
    # A DIMM needs a slot and room for it above the RAM (-m ...,slots,maxmem).
    size = f"{mem},slots=2,maxmem={spec.mem + spec.dimm_mib}M" if spec.dimm_mib else mem
    cmd = ["qemu-system-aarch64", "-M", machine + ",memory-backend=ram0", "-cpu", cpu,
           "-object", f"memory-backend-ram,id=ram0,size={mem},reserve=off", "-m", size,
           "-smp", str(spec.smp), "-nodefaults", "-display", "none", "-serial", "stdio",
           "-no-reboot", "-kernel", str(spec.kernel), "-initrd", str(spec.initrd),
           "-append", spec.append]
    if spec.dtb:
        if spec.profile == "uefi":   # the firmware makes the tables; QEMU ignores -dtb
            raise KxError("a device tree cannot be given under the uefi profile")
        cmd += ["-dtb", str(spec.dtb)]
    if spec.profile == "uefi":
        if not AAVMF_CODE.exists():
            raise KxError(f"{AAVMF_CODE} is missing: install qemu-efi-aarch64")
        vars_copy = Path(spec.workdir) / "AAVMF_VARS.fd"
        if not vars_copy.exists():
            shutil.copy(AAVMF_VARS, vars_copy)
        cmd += ["-drive", f"if=pflash,format=raw,readonly=on,file={AAVMF_CODE}",
                "-drive", f"if=pflash,format=raw,file={vars_copy}"]
    if spec.disk:
        cmd += ["-drive", f"if=none,id=d0,file={spec.disk},format=raw",
                "-device", "virtio-blk-device,drive=d0"]
    if spec.dimm_mib and spec.profile != "uefi":   # virt hot-plugs memory through ACPI
        raise KxError("a pc-dimm needs the uefi profile (ACPI)")
    if spec.qmp:
        cmd += ["-qmp", f"unix:{spec.qmp},server=on,wait=off"]
    if spec.gdb_port:
        cmd += ["-gdb", f"tcp:127.0.0.1:{spec.gdb_port}", "-S"]   # wait for the stub
    return cmd + list(spec.extra)


class Machine:
    """One QEMU process. Use boot() for the common run-to-exit case."""

    def __init__(self, spec, log, timeout):
        self.spec = spec
        self.log = Path(log)
        self.timeout = timeout
        self.result = Boot(log=self.log)
        self.proc = None
        self.start = None
        self._cond = threading.Condition()

    def __enter__(self):
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.qmp_dir = None
        if not self.spec.qmp:   # a scenario's own QMP socket is the scenario's
            self.qmp_dir = tempfile.mkdtemp(prefix="kx-qmp-")   # short: sun_path
            self.spec = replace(self.spec, qmp=Path(self.qmp_dir) / "qmp")
        cmd = qemu_command(self.spec)
        self.logf = open(self.log, "a", buffering=1, errors="replace")
        self.logf.write("# " + " ".join(cmd) + "\n")
        self.start = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self):
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(4096)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                self._add(raw)
        if buf:
            self._add(buf)
        with self._cond:
            self._cond.notify_all()

    def _add(self, raw):
        text = raw.decode("utf-8", "replace").rstrip("\r").replace("\r", "")
        t = time.monotonic() - self.start
        with self._cond:
            self.result.lines.append(Line(t, text))
            self.logf.write(f"[{t:9.3f}] {text}\n")
            self._cond.notify_all()

    def remaining(self):
        return self.timeout - (time.monotonic() - self.start)

    def wait_for(self, prefix, timeout=None):
        """The first line starting with PREFIX, or None at exit or timeout."""
        limit = time.monotonic() + min(timeout or self.remaining(), self.remaining())
        with self._cond:
            while True:
                hit = self.result.first(prefix)
                if hit:
                    return hit
                left = limit - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    return None
                self._cond.wait(min(left, 0.5))

    def wait_exit(self):
        try:
            self.result.exit_code = self.proc.wait(timeout=max(self.remaining(), 0))
        except subprocess.TimeoutExpired:
            self.result.timed_out = True
            self.record_cpus()
            self.kill()
        self.reader.join(timeout=5)
        return self.result

    def record_cpus(self):
        """Write every vCPU's registers to the log as '# ' lines (read_log
        skips them): the PC and PSTATE of a hung guest say where it hangs."""
        if not self.qmp_dir:
            return
        busy = self.cpu_seconds_over(CPU_SAMPLE_S)
        with self._cond:
            self.logf.write(f"# QEMU used {busy} of CPU time in the last {CPU_SAMPLE_S} s "
                            "(about 1 s per spinning vCPU; near 0 when they wait or QEMU is stuck)\n")
        try:
            text = self.registers()
        except (KxError, OSError, ValueError) as exc:
            text = f"(none: {exc})"
        self.result.cpus_at_timeout = cpu_summary(text)
        with self._cond:
            self.logf.write(f"{CPUS_MARK}\n")
            self.logf.writelines(f"# {ln}\n" for ln in text.splitlines())

    def cpu_seconds_over(self, seconds):
        """'N.NN s': the CPU time QEMU used over SECONDS of wall time (all its
        threads), or why it could not be read. A hung guest that spins uses
        about one CPU second a second per busy vCPU."""
        def used():
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        try:
            before = used()
            time.sleep(seconds)
            return f"{used() - before:.2f} s"
        except (OSError, ValueError, IndexError) as exc:
            return f"(unknown: {exc})"

    def registers(self):
        if not self.spec.qmp.exists():
            raise KxError("QEMU made no QMP socket")
        qmp = Qmp(self.spec.qmp, timeout=5)
        try:
            return qmp.execute("human-monitor-command", reply_timeout=10,
                               **{"command-line": "info registers -a"})
        finally:
            qmp.close()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def __exit__(self, *exc):
        self.kill()
        self.reader.join(timeout=5)
        if self.qmp_dir:
            shutil.rmtree(self.qmp_dir, ignore_errors=True)
        self.result.seconds = time.monotonic() - self.start
        if self.result.timed_out:
            self.logf.write(f"# killed by the workbench after {self.timeout} s\n")
        self.logf.write(f"# exit {self.result.exit_code} after {self.result.seconds:.3f} s\n")
        self.logf.close()


CPUS_MARK = "# the CPUs when the timeout struck (QEMU info registers):"
CPU_SAMPLE_S = 1.0
CPU_REGS = re.compile(r"PC=([0-9a-f]+) X00=([0-9a-f]+)|PSTATE=[0-9a-f]+ \S+ (EL\d)")


def cpu_summary(text):
    """'EL1 PC=... X0=...' for each vCPU of QEMU's info registers TEXT: where
    a hung guest sits, as a judge's reason can say it."""
    out, cur = [], {}
    for m in CPU_REGS.finditer(text):
        if m.group(1):
            cur = {"pc": m.group(1), "x0": m.group(2)}
        elif cur:
            out.append(f"{m.group(3)} PC={cur['pc']} X0={cur['x0']}")
            cur = {}
    return ", ".join(out)


LOG_LINE = re.compile(r"^\[\s*(\d+\.\d+)\] ?(.*)$")
LOG_EXIT = re.compile(r"^# exit (\S+) after (\d+\.\d+) s$")


def read_log(path):
    """The boots of a run's log, as Machine recorded them: each starts at
    its "# qemu-system-..." line (./kx judge re-judges a saved log)."""
    boots, regs = [], None
    for raw in Path(path).read_text(errors="replace").splitlines():
        if raw.startswith("# qemu-system"):
            boots.append(Boot(log=Path(path)))
            regs = None
            continue
        if not boots:
            continue
        if raw == CPUS_MARK:
            regs = []
        elif regs is not None and raw.startswith("# ") and not LOG_EXIT.match(raw):
            regs.append(raw[2:])
            boots[-1].cpus_at_timeout = cpu_summary("\n".join(regs))
        m = LOG_LINE.match(raw)
        if m:
            boots[-1].lines.append(Line(float(m.group(1)), m.group(2)))
        elif raw.startswith("# killed by the workbench"):
            boots[-1].timed_out = True
        elif LOG_EXIT.match(raw):
            code, secs = LOG_EXIT.match(raw).groups()
            boots[-1].exit_code = None if code == "None" else int(code)
            boots[-1].seconds = float(secs)
    return boots


def boot(spec, log, timeout):
    """Run QEMU until it exits or TIMEOUT seconds pass; return the Boot."""
    with Machine(spec, log, timeout) as m:
        m.wait_exit()
    return m.result
