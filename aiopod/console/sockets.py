"""Where pods serve their console socket, who may connect, and which pods are running.

Stdlib only: ``aiopod run`` imports this (and never ptpython or prompt_toolkit).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import struct
from pathlib import Path


class ConsoleSocketError(OSError):
    """The console socket cannot be served where it was asked for."""


class SocketInUse(ConsoleSocketError):
    """Another live pod already serves its console on this path."""


class UnsafeSocketFolder(ConsoleSocketError):
    """The socket folder is not ours alone (wrong owner or permissions)."""


def socket_dir() -> Path:
    """``$XDG_RUNTIME_DIR/aiopod``, else ``/tmp/aiopod-<uid>``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "aiopod"
    return Path("/tmp") / f"aiopod-{os.getuid()}"


def default_socket_path(pid: int | None = None) -> Path:
    """``<socket_dir>/<pid>.sock`` for this process (or ``pid``)."""
    return socket_dir() / f"{os.getpid() if pid is None else pid}.sock"


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` 0700, or check that an existing one is this user's and 0700.

    ``/tmp/aiopod-<uid>`` could have been made by someone else to catch our sockets.
    """
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise UnsafeSocketFolder(
            errno.EPERM, f"{path} is not a folder owned by uid {os.getuid()}; remove it", str(path)
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """``(pid, uid, gid)`` of the process at the other end of a unix socket (SO_PEERCRED)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


def peer_allowed(uid: int) -> bool:
    """The pod's own user, or root."""
    return uid in (os.getuid(), 0)


def is_live(path: Path) -> bool:
    """Whether something accepts connections on the unix socket ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except FileNotFoundError:
        return False
    except ConnectionRefusedError:
        return False
    except OSError as exc:
        # EACCES/EPERM: someone else's socket, alive or not; EAGAIN: a full backlog is alive
        return exc.errno in (errno.EACCES, errno.EPERM, errno.EAGAIN)
    else:
        return True
    finally:
        probe.close()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(folder: Path | None = None) -> list[Path]:
    """Remove the sockets of pods that are gone (their pid is dead and nobody listens)."""
    folder = socket_dir() if folder is None else folder
    removed = []
    for path in socket_files(folder):
        pid = int(path.stem)
        if pid != os.getpid() and not pid_alive(pid) and (path.is_symlink() or not is_live(path)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def socket_files(folder: Path | None = None) -> list[Path]:
    """The ``<pid>.sock`` files in the socket folder, by pid."""
    folder = socket_dir() if folder is None else folder
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
    found = [folder / n for n in names if n.endswith(".sock") and n[: -len(".sock")].isdigit()]
    return sorted(found, key=lambda p: int(p.stem))


class Listener:
    """A bound, listening unix socket that is removed when closed (if it is still ours)."""

    def __init__(self, sock: socket.socket, path: Path, inode: int, link: Path | None = None) -> None:
        self.sock = sock
        self.path = path
        self.inode = inode
        self.link = link

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            if self.path.lstat().st_ino == self.inode:  # not replaced by someone else since
                self.path.unlink()
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()


def _link_in_folder(path: Path) -> Path | None:
    """A socket served elsewhere gets a ``<pid>.sock`` link in the folder, so ``aiopod ps`` finds it."""
    link = default_socket_path()
    if path == link:
        return None
    try:
        ensure_private_dir(link.parent)
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(path)
    except OSError:
        return None  # only ps is poorer for it
    return link


def listen(path: Path, backlog: int = 64) -> Listener:
    """Bind ``path`` 0600 and listen; clean up a stale socket there, refuse a live one.

    The socket is bound under a temporary name and renamed into place once it is 0600,
    so it is never reachable with looser permissions, even in a shared folder.
    """
    if path.parent == socket_dir():
        try:
            ensure_private_dir(path.parent)
        except ConsoleSocketError:
            raise
        except OSError as exc:
            raise ConsoleSocketError(exc.errno, f"cannot make {path.parent}: {exc.strerror or exc}", str(path)) from exc
        clean_stale(path.parent)
    elif not path.parent.is_dir():
        raise ConsoleSocketError(errno.ENOENT, f"cannot serve {path}: no folder {path.parent}", str(path))
    if is_live(path):
        raise SocketInUse(errno.EADDRINUSE, f"{path} is served by another live pod", str(path))
    if path.exists() and not stat.S_ISSOCK(path.lstat().st_mode):
        raise ConsoleSocketError(errno.EEXIST, f"{path} exists and is not a socket", str(path))
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(temporary))
        os.chmod(temporary, 0o600)
        os.rename(temporary, path)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise ConsoleSocketError(exc.errno, f"cannot serve {path}: {exc.strerror or exc}", str(path)) from exc
    except BaseException:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return Listener(sock, path, path.lstat().st_ino, _link_in_folder(path))
