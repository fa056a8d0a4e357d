"""Paths, errors and subprocess helpers shared by every module."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kexec-mmu"


class KxError(Exception):
    """A failure the user must read: the message says what failed and where."""


def log(msg):
    print(f"kx: {msg}", file=sys.stderr, flush=True)


def run(cmd, cwd=None, env=None, quiet=False, logfile=None):
    """Run a command; raise KxError naming it (and its log) if it fails."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    if logfile:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        with open(logfile, "w") as out:
            res = subprocess.run(cmd, cwd=cwd, env=full_env, stdout=out,
                                 stderr=subprocess.STDOUT)
    elif quiet:
        res = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True)
    else:
        res = subprocess.run(cmd, cwd=cwd, env=full_env)
    if res.returncode != 0:
        where = f" (log: {logfile})" if logfile else ""
        detail = ""
        if quiet and not logfile:
            detail = "\n" + (res.stdout + res.stderr)[-3000:]
        raise KxError(f"command failed with exit {res.returncode}: "
                      f"{' '.join(map(str, cmd))}{where}{detail}")
    return res


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
