"""A minimal GDB remote-protocol client for QEMU's gdbstub.

Enough to interrupt a running guest, read registers by name (including
system registers such as SCTLR and SCTLR_EL2) and memory, set a hardware
breakpoint and continue. One process, one socket: sampling costs about a
millisecond, fast enough to catch a relocation loop that runs for a
fraction of a second.
"""
import re
import socket
import time
from contextlib import contextmanager

from .util import KxError


READ_CHUNK = 2048       # QEMU's gdbstub answers at most 2 KiB per read


class Stub:
    def __init__(self, port, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                # Tiny packets both ways: without this, Nagle and delayed ACKs
                # cost about 40 ms per request.
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise KxError(f"cannot reach QEMU's gdbstub on port {port}")
                time.sleep(0.1)
        self.buf = b""
        self.regs = {}
        self.request(b"qSupported:xmlRegisters=aarch64")
        self._load_registers()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _recv_packet(self):
        while True:
            m = re.search(rb"\$([^#]*)#[0-9a-fA-F]{2}", self.buf)
            if m:
                self.buf = self.buf[m.end():]
                self._send(b"+")
                return m.group(1)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise KxError("QEMU's gdbstub closed the connection")
            self.buf += chunk

    def _send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:    # QEMU exited: say so, not a bare BrokenPipeError
            raise KxError(f"QEMU's gdbstub is gone ({e.strerror})") from e

    def request(self, payload):
        self._send(b"$" + payload + b"#%02x" % (sum(payload) & 0xFF))
        return self._recv_packet()

    def _xfer(self, name):
        out, off = b"", 0
        while True:
            reply = self.request(b"qXfer:features:read:%s:%x,%x" % (name.encode(), off, 3000))
            out += reply[1:]
            off += len(reply) - 1
            if reply[:1] != b"m":
                return out.decode()

    def _load_registers(self):
        """Name -> number, as gdb numbers them: in order, with regnum resets."""
        top = self._xfer("target.xml")
        num = 0
        for inc in re.findall(r'href="([^"]+)"', top):
            for attrs in re.findall(r"<reg ([^>]*)>", self._xfer(inc)):
                m = re.search(r'regnum="(\d+)"', attrs)
                if m:
                    num = int(m.group(1))
                self.regs[re.search(r'name="([^"]+)"', attrs).group(1)] = num
                num += 1

    def reg(self, name):
        reply = self.request(b"p%x" % self.regs[name])
        return int.from_bytes(bytes.fromhex(reply.decode()), "little")

    def set_reg(self, name, value):
        reply = self.request(b"P%x=%s" % (self.regs[name], value.to_bytes(8, "little").hex().encode()))
        if reply != b"OK":
            raise KxError(f"QEMU's gdbstub refused to set {name}: {reply!r}")

    def mem(self, addr, length):
        reply = self.request(b"m%x,%x" % (addr, length))
        if reply.startswith(b"E"):
            return None
        return bytes.fromhex(reply.decode())

    def cont(self):
        self._send(b"$c#63")

    def step(self):
        """Execute one instruction of the stopped guest; return the stop reply."""
        self._send(b"$s#73")
        return self._recv_packet()

    def interrupt(self):
        """Stop the running guest; return the stop reply."""
        self._send(b"\x03")
        return self._recv_packet()

    def wait_stop(self, timeout=None):
        """The stop reply of a guest that was let run, or None if it has not
        stopped within TIMEOUT seconds (when given)."""
        if timeout is None:
            return self._recv_packet()
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            return self._recv_packet()
        except TimeoutError:
            return None
        finally:
            self.sock.settimeout(old)

    def hbreak(self, addr, on=True):
        return self.request(b"%s1,%x,4" % (b"Z" if on else b"z", addr))

    @contextmanager
    def physical(self):
        """Memory reads by physical address while inside (QEMU's
        Qqemu.PhyMemMode), as read(pa, length) -> bytes or None; virtual
        again after."""
        if self.request(b"Qqemu.PhyMemMode:1") != b"OK":
            raise KxError("QEMU's gdbstub refused Qqemu.PhyMemMode:1")
        try:
            yield self.read_chunked
        finally:
            self.request(b"Qqemu.PhyMemMode:0")

    def read_chunked(self, addr, length):
        """LENGTH bytes from ADDR in reads QEMU answers, or None."""
        parts, done = [], 0
        while done < length:
            part = self.mem(addr + done, min(READ_CHUNK, length - done))
            if not part:
                return None
            parts.append(part)
            done += len(part)
        return b"".join(parts)
