"""Guest userland: static kexec-tools, busybox, makedumpfile, kxutil."""
import os
import re
import shutil
import subprocess
from pathlib import Path

from . import deps, pins, sources
from .initramfs import Cpio
from .util import BUILD, CACHE, REPO, KxError, log, run, sha256_file

OUT = BUILD / "userland"
DEBS = CACHE / "debs"
CROSS = "aarch64-linux-gnu-"

# busybox applets the guest scripts use (linked to the one static binary);
# awk to which for the kernel's kexec selftest scripts.
APPLETS = """sh ash cat cpio cut date dd dmesg echo env false free grep head kill ls
mkdir mkfifo mknod mkswap mount poweroff printf ps read reboot rm sed seq sha256sum
sleep swapoff swapon sync tail test tr true umount uname wc xargs
awk find gunzip hexdump id od which""".split()


def kexec_tools():
    """Cross-build kexec-tools static from the pinned Debian source."""
    binary = OUT / "kexec"
    if binary.exists():
        return binary
    pin = pins.KEXEC_TOOLS
    files = sources.fetch_source_package("kexec-tools", pin)
    work = OUT / "kexec-tools"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    orig, debian = (files[name] for name in pin["files"])
    run(["tar", "-xf", str(orig), "-C", str(work)])
    src = work / pin["topdir"]
    run(["tar", "-xf", str(debian), "-C", str(src)])
    series = src / "debian" / "patches" / "series"
    if series.exists():
        for patch in series.read_text().split():
            if patch.startswith("#"):
                continue
            run(["patch", "-p1", "-s", "-i", str(src / "debian" / "patches" / patch)],
                cwd=src, quiet=True)
    log("building kexec-tools (static, aarch64)")
    logf = OUT / "kexec-tools.log"
    run(["./configure", f"--host={CROSS[:-1]}", "--without-zlib", "--without-lzma",
         "--without-xen", "LDFLAGS=-static"], cwd=src, logfile=logf)
    run(["make", f"-j{os.cpu_count()}"], cwd=src, logfile=logf)
    shutil.copy(src / "build" / "sbin" / "kexec", binary)
    return binary


def guest_debs():
    """Download the pinned arm64 packages, verify them, unpack into debroot."""
    root = OUT / "debroot"
    stamp = OUT / ".debroot"
    if stamp.exists():
        return root
    DEBS.mkdir(parents=True, exist_ok=True)
    apt = deps.arm64_apt()
    for name, (version, want) in pins.GUEST_DEBS.items():
        debs = list(DEBS.glob(f"{name}_*_arm64.deb"))
        good = [d for d in debs if sha256_file(d) == want]
        if not good:
            for d in debs:
                d.unlink()
            log(f"downloading {name}:arm64={version}")
            try:
                apt.get(["download", f"{name}:arm64={version}"], cwd=DEBS)
            except KxError as exc:
                raise KxError(f"pin {name}:arm64={version}: download failed: {exc}")
            debs = list(DEBS.glob(f"{name}_*_arm64.deb"))
            if not debs:
                raise KxError(f"pin {name}:arm64={version}: no .deb was downloaded")
            sources.verify(f"{name}:arm64={version}", debs[0], want)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for deb in sorted(DEBS.glob("*_arm64.deb")):
        run(["dpkg-deb", "-x", str(deb), str(root)])
    check_needed(root / "usr" / "bin" / "makedumpfile", root)
    stamp.touch()
    return root


def needed(elf):
    res = subprocess.run([f"{CROSS}readelf", "-d", str(elf)], capture_output=True, text=True)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", res.stdout)


def lib_dirs(root):
    return [root / "lib" / "aarch64-linux-gnu", root / "usr" / "lib" / "aarch64-linux-gnu",
            root / "lib"]


def check_needed(elf, root):
    """Raise KxError naming any library in ELF's NEEDED closure not in ROOT."""
    todo, seen = [elf], set()
    while todo:
        for lib in needed(todo.pop()):
            if lib in seen:
                continue
            seen.add(lib)
            found = [d / lib for d in lib_dirs(root) if (d / lib).exists()]
            if not found:
                raise KxError(f"{elf.name} needs {lib}, which no pinned guest package "
                              f"provides: add its package to pins.GUEST_DEBS")
            todo.append(found[0].resolve())


def kxutil():
    out = OUT / "kxutil"
    src = REPO / "guest" / "kxutil.c"
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    OUT.mkdir(parents=True, exist_ok=True)
    run([f"{CROSS}gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out),
         str(src)], quiet=True)
    return out


def prepare():
    """Everything the root filesystem needs, built or fetched once."""
    return {"kexec": kexec_tools(), "debroot": guest_debs(), "kxutil": kxutil()}


def write_rootfs(cpio, parts):
    """The guest root filesystem, shared by every initramfs."""
    root = parts["debroot"]
    cpio.dirs("bin", "sbin", "usr", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp",
              "etc", "kx", "root")
    cpio.chardev("dev/console", 5, 1)
    cpio.file("init", REPO / "guest" / "init", perm=0o755)
    cpio.file("bin/busybox", root / "bin" / "busybox", perm=0o755)
    for applet in APPLETS:
        cpio.symlink(f"bin/{applet}", "busybox")
    cpio.file("sbin/kexec", parts["kexec"], perm=0o755)
    cpio.file("bin/kxutil", parts["kxutil"], perm=0o755)
    cpio.file("usr/bin/makedumpfile", root / "usr" / "bin" / "makedumpfile", perm=0o755)
    cpio.tree("lib", root / "lib")
    cpio.dir("usr/lib")
    libs = root / "usr" / "lib" / "aarch64-linux-gnu"
    cpio.dir("usr/lib/aarch64-linux-gnu")
    for lib in sorted(libs.iterdir()):
        if ".so" not in lib.name:
            continue
        name = f"usr/lib/aarch64-linux-gnu/{lib.name}"
        if lib.is_symlink():
            cpio.symlink(name, os.readlink(lib))
        else:
            cpio.file(name, lib)


def build_initramfs(path, parts, extra=None):
    """Root filesystem plus EXTRA {name: source path or bytes}."""
    with Cpio(path) as cpio:
        write_rootfs(cpio, parts)
        for name, src in (extra or {}).items():
            if isinstance(src, bytes):
                cpio.data(name, src)
            else:
                cpio.file(name, src)
    return Path(path)
