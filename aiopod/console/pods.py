"""``aiopod ps`` and the targets of ``aiopod attach``: this user's running pods on this machine.

Each pod answers an ``info`` hello on its console socket from its console thread, so a
pod whose loop is blocked is still listed. Stdlib only.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import protocol
from .sockets import clean_stale, socket_dir, socket_files


class TargetError(Exception):
    """``aiopod attach``'s argument names no pod, or several."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class PodInfo:
    """One running pod, as ``aiopod ps`` shows it."""

    pid: int
    name: str
    started: float
    beans: int | None
    sessions: int | None
    socket: Path

    @property
    def uptime(self) -> float:
        return max(0.0, time.time() - self.started)


def request(path: Path, message: dict[str, Any], timeout: float = 2.0) -> dict[str, Any]:
    """One request, one answer, on a console socket (blocking)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(protocol.encode(message))
        return receive(sock)


def receive(sock: socket.socket) -> dict[str, Any]:
    """One frame from a blocking socket."""
    size = int.from_bytes(_recv_exactly(sock, 4), "big")
    if size > protocol.MAX_FRAME:
        raise protocol.ProtocolError(f"a frame of {size} bytes is over the limit")
    return protocol.decode(_recv_exactly(sock, size))


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the pod closed the connection")
        data += chunk
    return bytes(data)


def probe(path: Path) -> PodInfo | None:
    """What the pod on ``path`` says about itself; None when nobody answers."""
    try:
        answer = request(path, protocol.hello("info"))
    except (OSError, protocol.ProtocolError):
        return None
    if answer.get("type") != "info":
        return None
    return PodInfo(
        pid=int(answer.get("pid", 0)),
        name=str(answer.get("name", "?")),
        started=float(answer.get("started", time.time())),
        beans=answer.get("beans"),
        sessions=answer.get("sessions"),
        socket=Path(answer.get("socket") or path),
    )


def running_pods(folder: Path | None = None) -> list[PodInfo]:
    """The pods serving a socket in the socket folder (stale sockets are removed on the way)."""
    clean_stale(folder)
    found = []
    for path in socket_files(folder):
        info = probe(path)
        if info is not None:
            found.append(info)
    return found


def format_uptime(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def ps_table(pods: list[PodInfo]) -> str:
    """The table ``aiopod ps`` prints."""
    rows = [["PID", "NAME", "UPTIME", "BEANS", "SESSIONS", "SOCKET"]]
    for pod in pods:
        rows.append(
            [
                str(pod.pid),
                pod.name,
                format_uptime(pod.uptime),
                "?" if pod.beans is None else str(pod.beans),
                "?" if pod.sessions is None else str(pod.sessions),
                str(pod.socket),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def is_telnet_address(target: str) -> bool:
    """``PORT`` or ``HOST:PORT`` (a telnet console), as opposed to a pid, a name or a path."""
    host, sep, port = target.rpartition(":")
    if not sep:
        return False  # a bare number is a pid; a port needs HOST: ... unless no pod has that pid
    return port.isdigit() and "/" not in host


def resolve(target: str | None, folder: Path | None = None) -> Path:
    """The socket of the pod ``target`` names: a pid, a name, a socket path, or None (the only pod)."""
    if target is not None and ("/" in target or target.endswith(".sock")):
        path = Path(target)
        try:
            path.lstat()
        except FileNotFoundError:
            raise TargetError(f"no console socket at {path}") from None
        except PermissionError:
            pass  # connecting says so, in one line
        return path
    pods = running_pods(folder)
    where = socket_dir() if folder is None else folder
    if target is None:
        if len(pods) == 1:
            return pods[0].socket
        if not pods:
            raise TargetError(f"no running pod of uid {os.getuid()} serves a console socket in {where}")
        raise TargetError(f"{len(pods)} pods are running; name one (pid or name):\n{ps_table(pods)}", status=2)
    if target.isdigit():
        matches = [p for p in pods if p.pid == int(target)]
        if not matches:
            raise TargetError(f"no pod with pid {target} serves a console socket in {where} (see aiopod ps)")
        return matches[0].socket
    matches = [p for p in pods if p.name == target]
    if len(matches) == 1:
        return matches[0].socket
    if not matches:
        names = ", ".join(sorted({p.name for p in pods})) or "none"
        raise TargetError(f"no running pod is named {target!r} (running: {names}; see aiopod ps)")
    raise TargetError(f"{len(matches)} pods are named {target!r}; give a pid:\n{ps_table(matches)}", status=2)
