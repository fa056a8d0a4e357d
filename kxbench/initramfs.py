"""newc cpio images, written directly so no root or fakeroot is needed.

Entries are written in the order given with mtime 0, so the same inputs
give the same bytes. File data is streamed, so large payloads cost no RAM.
"""
import os
import stat
from pathlib import Path

TRAILER = "TRAILER!!!"


class Cpio:
    def __init__(self, path):
        self.out = open(path, "wb")
        self.ino = 1
        self.names = set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _header(self, name, mode, size, rdev=(0, 0), nlink=1):
        name_b = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev[0], rdev[1],
                  len(name_b), 0]
        self.ino += 1
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.out.write(hdr + name_b)
        self._pad()

    def _pad(self):
        self.out.write(b"\0" * (-self.out.tell() % 4))

    def _name(self, name):
        name = name.lstrip("/")
        if name in self.names:
            raise ValueError(f"duplicate cpio entry {name}")
        self.names.add(name)
        return name

    def dir(self, name, perm=0o755):
        self._header(self._name(name), stat.S_IFDIR | perm, 0, nlink=2)

    def dirs(self, *names):
        for name in names:
            self.dir(name)

    def data(self, name, blob, perm=0o644):
        self._header(self._name(name), stat.S_IFREG | perm, len(blob))
        self.out.write(blob)
        self._pad()

    def file(self, name, src, perm=None):
        src = Path(src)
        size = src.stat().st_size
        if perm is None:
            perm = stat.S_IMODE(src.stat().st_mode)
        self._header(self._name(name), stat.S_IFREG | perm, size)
        with open(src, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                self.out.write(block)
        self._pad()

    def symlink(self, name, target):
        blob = target.encode()
        self._header(self._name(name), stat.S_IFLNK | 0o777, len(blob))
        self.out.write(blob)
        self._pad()

    def chardev(self, name, major, minor, perm=0o600):
        self._header(self._name(name), stat.S_IFCHR | perm, 0, rdev=(major, minor))

    def tree(self, dest, src):
        """Copy the directory SRC (files, symlinks, dirs) below DEST.

        DEST itself is created too: the kernel's unpacker makes no parents.
        """
        src = Path(src)
        if dest.lstrip("/") not in self.names:
            self.dir(dest)
        for root, dirnames, files in os.walk(src):
            dirnames.sort()
            rel = Path(root).relative_to(src)
            for d in dirnames:
                path = Path(root) / d
                name = f"{dest}/{rel / d}"
                if path.is_symlink():
                    self.symlink(name, os.readlink(path))
                else:
                    self.dir(name)
            for fname in sorted(files):
                path = Path(root) / fname
                name = f"{dest}/{rel / fname}"
                if path.is_symlink():
                    self.symlink(name, os.readlink(path))
                else:
                    self.file(name, path)

    def close(self):
        if self.out.closed:
            return
        self._header(TRAILER, 0, 0, nlink=1)
        self.out.write(b"\0" * (-self.out.tell() % 512))
        self.out.close()


def read_entries(path):
    """Parse a newc archive into [(name, mode, data)]: for tests and checks."""
    blob = Path(path).read_bytes()
    pos, out = 0, []
    while True:
        if blob[pos:pos + 6] != b"070701":
            raise ValueError(f"bad cpio magic at {pos}")
        fields = [int(blob[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        pos += 110
        name = blob[pos:pos + namesize - 1].decode()
        pos += namesize
        pos += -pos % 4
        data = blob[pos:pos + size]
        pos += size
        pos += -pos % 4
        if name == TRAILER:
            return out
        out.append((name, mode, data))
