"""Host packages, and a private apt configuration for pinned downloads.

The private configuration has its own sources, lists and cache under the
user's cache directory, so the machine's apt setup is never changed.
"""
import os
import subprocess
import time

from . import pins
from .util import CACHE, KxError, log, run

MIRROR = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
LISTS_MAX_AGE = 24 * 3600


def missing_host_packages(packages=None):
    missing = []
    for pkg in packages or pins.HOST_PACKAGES:
        res = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg],
                             capture_output=True, text=True)
        if "install ok installed" not in res.stdout:
            missing.append(pkg)
    return missing


def ensure_host_packages():
    missing = missing_host_packages()
    if not missing:
        return
    if os.geteuid() != 0:
        raise KxError("host packages missing and not root to install them: "
                      + " ".join(missing))
    log("installing host packages: " + " ".join(missing))
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], env=env, quiet=True)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
        env=env, quiet=True)
    still = missing_host_packages(missing)
    if still:
        raise KxError("apt-get did not install: " + " ".join(still))


class PrivateApt:
    """apt-get/apt-cache with their own sources, lists and cache."""

    def __init__(self, name, source_lines, arch=None):
        self.root = CACHE / f"apt-{name}"
        self.source_lines = source_lines
        self.arch = arch

    def options(self):
        r = self.root
        opts = {
            "Dir::Etc::SourceList": r / "sources.list",
            "Dir::Etc::SourceParts": r / "sources.list.d",
            "Dir::Etc::Preferences": r / "preferences",
            "Dir::Etc::PreferencesParts": r / "preferences.d",
            "Dir::State::Lists": r / "lists",
            "Dir::State::status": r / "status",
            "Dir::Cache": r / "cache",
            "APT::Sandbox::User": "root",
        }
        if self.arch:
            opts["APT::Architecture"] = self.arch
            opts["APT::Architectures::"] = self.arch
        out = []
        for key, val in opts.items():
            out += ["-o", f"{key}={val}"]
        return out

    def _prepare(self):
        for sub in ("sources.list.d", "preferences.d", "lists/partial",
                    "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "status").touch()
        text = "\n".join(self.source_lines) + "\n"
        src = self.root / "sources.list"
        if not src.exists() or src.read_text() != text:
            src.write_text(text)
            stamp = self.root / "updated"
            if stamp.exists():
                stamp.unlink()

    def update(self, force=False):
        self._prepare()
        stamp = self.root / "updated"
        fresh = stamp.exists() and time.time() - stamp.stat().st_mtime < LISTS_MAX_AGE
        if fresh and not force:
            return
        run(["apt-get", *self.options(), "update", "-q"], quiet=True)
        stamp.touch()

    def get(self, args, cwd):
        """apt-get ARGS in CWD, with one retry after refreshing the lists.

        A failure is reported with apt's own error lines, not its options.
        """
        self.update()
        cmd = ["apt-get", *self.options(), *args]
        res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        if res.returncode != 0:
            self.update(force=True)
            res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        if res.returncode != 0:
            errors = [ln for ln in (res.stdout + res.stderr).splitlines()
                      if ln.startswith(("E:", "W:"))]
            raise KxError(f"apt-get {' '.join(args)}: " + ("; ".join(errors) or
                                                           f"exit {res.returncode}"))
        return res


def source_apt():
    lines = [f"deb-src [signed-by={KEYRING}] {MIRROR} {suite} main"
             for suite in ("bullseye", "bookworm")]
    # The upstream peer's pinned 6.1 release is a bookworm security update.
    lines.append(f"deb-src [signed-by={KEYRING}] {SECURITY} bookworm-security main")
    return PrivateApt("src", lines)


def arm64_apt():
    return PrivateApt("arm64", [f"deb [arch=arm64 signed-by={KEYRING}] {MIRROR} bookworm main"],
                      arch="arm64")
