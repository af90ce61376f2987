"""``aiopod attach [HOST:]PORT``: a terminal client for the telnet console (no telnet binary needed)."""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import socket
import struct
import sys
import termios
import tty
from collections.abc import Iterator

from ..pod.errors import AttachError

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
ECHO, SGA, TTYPE, NAWS, LINEMODE = 1, 3, 24, 31, 34
IS, SEND = 0, 1


def parse_address(address: str) -> tuple[str, int]:
    """``[HOST:]PORT`` (HOST defaults to 127.0.0.1)."""
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise AttachError(f"{address!r} is not [HOST:]PORT, e.g. 127.0.0.1:8023")
    return host or "127.0.0.1", int(port)


class TelnetClient:
    """Just enough telnet for prompt_toolkit's server: TTYPE, NAWS, SGA, server echo."""

    def __init__(self, sock: socket.socket, term: str) -> None:
        self.sock = sock
        self.term = term.encode("ascii", "replace")
        self._state = 0  # 0 data, 1 after IAC, 2 after IAC+verb, 3 in SB, 4 in SB after IAC
        self._verb = 0
        self._sb = bytearray()

    def window_size(self) -> bytes:
        size = shutil.get_terminal_size()
        return bytes([IAC, SB, NAWS]) + struct.pack("!HH", size.columns, size.lines) + bytes([IAC, SE])

    def feed(self, data: bytes) -> bytes:
        """Answer negotiations in ``data``; return what is for the screen."""
        out = bytearray()
        for byte in data:
            if self._state == 0:
                if byte == IAC:
                    self._state = 1
                else:
                    out.append(byte)
            elif self._state == 1:
                if byte == IAC:
                    out.append(IAC)
                    self._state = 0
                elif byte in (DO, DONT, WILL, WONT):
                    self._verb, self._state = byte, 2
                elif byte == SB:
                    self._sb.clear()
                    self._state = 3
                else:
                    self._state = 0
            elif self._state == 2:
                self._answer(self._verb, byte)
                self._state = 0
            elif self._state == 3:
                if byte == IAC:
                    self._state = 4
                else:
                    self._sb.append(byte)
            else:
                if byte == SE:
                    self._subnegotiation(bytes(self._sb))
                    self._state = 0
                else:
                    self._sb.append(byte)
                    self._state = 3
        return bytes(out)

    def _answer(self, verb: int, option: int) -> None:
        if verb == DO:
            if option == TTYPE:
                self.sock.sendall(bytes([IAC, WILL, TTYPE]))
            elif option == NAWS:
                self.sock.sendall(bytes([IAC, WILL, NAWS]) + self.window_size())
            else:
                self.sock.sendall(bytes([IAC, WONT, option]))
        elif verb == WILL:
            self.sock.sendall(bytes([IAC, DO if option in (ECHO, SGA) else DONT, option]))

    def _subnegotiation(self, data: bytes) -> None:
        if data[:2] == bytes([TTYPE, SEND]):
            self.sock.sendall(bytes([IAC, SB, TTYPE, IS]) + self.term + bytes([IAC, SE]))

    @staticmethod
    def escape(data: bytes) -> bytes:
        return data.replace(bytes([IAC]), bytes([IAC, IAC]))


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Raw mode while attached (Ctrl-C and Ctrl-D go to the pod's console), restored after."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def attach(address: str, timeout: float = 5.0) -> int:
    """Connect the terminal to a pod's telnet console until the session ends; return 0."""
    host, port = parse_address(address)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise AttachError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    client = TelnetClient(sock, os.environ.get("TERM", "xterm"))
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    resized = False

    def on_winch(signum: int, frame: object) -> None:
        nonlocal resized
        resized = True

    previous = signal.signal(signal.SIGWINCH, on_winch)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    selector.register(stdin, selectors.EVENT_READ)
    try:
        with raw_terminal(stdin), sock:
            while True:
                if resized:
                    resized = False
                    sock.sendall(client.window_size())
                for key, _ in selector.select(timeout=0.5):
                    if key.fileobj is sock:
                        try:
                            data = sock.recv(65536)
                        except BlockingIOError:
                            continue
                        except OSError:
                            data = b""
                        if not data:
                            return 0
                        os.write(stdout, client.feed(data))
                    else:
                        data = os.read(stdin, 4096)
                        if not data:  # stdin closed (not a terminal): leave
                            return 0
                        sock.setblocking(True)
                        try:
                            sock.sendall(client.escape(data))
                        except OSError:
                            return 0
                        finally:
                            sock.setblocking(False)
    finally:
        selector.close()
        signal.signal(signal.SIGWINCH, previous)
