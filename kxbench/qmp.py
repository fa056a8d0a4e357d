"""A minimal QMP client: enough to hot-add and remove a pc-dimm and to wait
for QEMU's DEVICE_DELETED event."""
import json
import socket
import time

from .util import KxError


class Qmp:
    def __init__(self, path, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise KxError(f"cannot reach QEMU's QMP socket {path}")
                time.sleep(0.1)
        self.buf, self.events = b"", []
        if self._read(timeout=timeout) is None:       # the greeting
            self.close()
            raise KxError(f"QEMU sent no QMP greeting on {path} within {timeout} s")
        self.execute("qmp_capabilities")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _read(self, timeout=None):
        """One JSON message, or None at TIMEOUT seconds."""
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                raise KxError("QEMU closed its QMP socket")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, reply_timeout=30, **arguments):
        """The command's return value; events that arrive meanwhile are kept."""
        msg = {"execute": command, **({"arguments": arguments} if arguments else {})}
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read(timeout=reply_timeout)
            if reply is None:
                raise KxError(f"QMP {command}: no reply")
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                raise KxError(f"QMP {command}: {reply['error'].get('desc', reply['error'])}")
            elif "return" in reply:
                return reply["return"]

    def wait_event(self, name, timeout, **data):
        """The first event NAME whose data includes DATA, within TIMEOUT s."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if ev["event"] == name and all(ev.get("data", {}).get(k) == v
                                               for k, v in data.items()):
                    self.events.remove(ev)
                    return ev
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            msg = self._read(timeout=left)
            if msg is not None and "event" in msg:
                self.events.append(msg)
