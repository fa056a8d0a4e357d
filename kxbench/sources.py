"""Pinned sources: fetch through the private apt, verify sha256, unpack."""
import shutil
import tempfile
from pathlib import Path

from . import deps, pins
from .util import BUILD, CACHE, KxError, log, run, sha256_file

DOWNLOADS = CACHE / "downloads"


def verify(pin_name, path, want):
    """Raise KxError naming the pin unless PATH exists with sha256 WANT."""
    if not Path(path).exists():
        raise KxError(f"pin {pin_name}: {Path(path).name} is absent")
    got = sha256_file(path)
    if got != want:
        raise KxError(f"pin {pin_name}: {Path(path).name} has sha256 {got}, "
                      f"pinned {want}")


def fetch_source_package(pin_name, pin):
    """Return {file: path} of the pinned files of a Debian source package."""
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    wanted = {f: DOWNLOADS / f for f in pin["files"]}
    if all(p.exists() and sha256_file(p) == pin["files"][f] for f, p in wanted.items()):
        return wanted
    log(f"fetching {pin['package']}={pin['version']} ({pin_name})")
    with tempfile.TemporaryDirectory(dir=DOWNLOADS) as tmp:
        try:
            deps.source_apt().get(["source", "--download-only",
                                   f"{pin['package']}={pin['version']}"], cwd=tmp)
        except KxError as exc:
            raise KxError(f"pin {pin_name}: could not download source package "
                          f"{pin['package']}={pin['version']} from {pin['suite']}: {exc}")
        for name, path in wanted.items():
            got = Path(tmp) / name
            if not got.exists():
                raise KxError(f"pin {pin_name}: {pin['package']}={pin['version']} "
                              f"did not provide {name}")
            verify(pin_name, got, pin["files"][name])
            shutil.move(str(got), path)
    return wanted


def kernel_tarball(kernel):
    """The verified tarball for a pinned kernel ('base' or 'upstream')."""
    if kernel not in pins.KERNELS:
        raise KxError(f"no pinned kernel source named {kernel!r}")
    pin = pins.KERNELS[kernel]
    files = fetch_source_package(kernel, pin)
    return next(iter(files.values()))


def unpacked_kernel(kernel):
    """BUILD/src/<topdir>: the pristine tree, unpacked once and stamped."""
    pin = pins.KERNELS[kernel]
    tarball = kernel_tarball(kernel)
    dest = BUILD / "src" / pin["topdir"]
    stamp = BUILD / "src" / f".{pin['topdir']}.unpacked"
    if stamp.exists() and dest.is_dir():
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    log(f"unpacking {tarball.name}")
    run(["tar", "-xf", str(tarball), "-C", str(dest.parent)])
    if not dest.is_dir():
        raise KxError(f"pin {kernel}: {tarball.name} has no top directory {pin['topdir']}")
    stamp.touch()
    return dest
