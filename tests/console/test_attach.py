"""``aiopod attach`` to a pod's console socket: real pods, a real client in a pseudo-terminal."""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.console._attach import BEANS, Attach, Pod, environment
from tests.console._pty import ticks, wait_ticking, wait_until

Start = Callable[..., Pod]
Client = Callable[..., Attach]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "beans.py").write_text(BEANS)
    return environment(tmp_path)


@pytest.fixture
def pod(tmp_path: Path, env: dict[str, str]) -> Iterator[Start]:
    pods: list[Pod] = []

    def start(*args: str) -> Pod:
        pods.append(Pod(tmp_path, env, *args))
        return pods[-1]

    yield start
    for p in pods:
        p.stop()


@pytest.fixture
def attach(tmp_path: Path, env: dict[str, str]) -> Iterator[Client]:
    clients: list[Attach] = []

    def start(*args: str, **kwargs: object) -> Attach:
        clients.append(Attach(tmp_path, env, *args, **kwargs))  # type: ignore[arg-type]
        return clients[-1]

    yield start
    for client in clients:
        client.close()


def cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aiopod", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=30
    )


def test_attach_to_a_pod_started_with_no_console_configuration(
    pod: Start, attach: Client, tmp_path: Path, env: dict[str, str]
) -> None:
    tick = tmp_path / "ticks.txt"
    p = pod(f"beans.ticker:path={tick}")
    path = p.socket()
    assert path == tmp_path / "run" / "aiopod" / f"{p.pid}.sock"
    a = attach()  # no argument: the only pod
    a.child.expect_exact(f"attached to pod beans.ticker (pid {p.pid}) as session #1")
    a.prompt()
    a.run("6 * 7", "42")
    a.run("print('from', 'the pod', os.getpid() if 'os' in dir() else __import__('os').getpid())", f"the pod {p.pid}")
    out = a.run("ps()", "running")
    assert "beans.ticker" in out
    a.child.sendline("exit()")
    assert a.exit_status() == 0
    session = p.wait_for(r"console session #1 \(pid (\d+) uid (\d+)\) ended after [\d.]+s: the client left")
    assert int(session[2]) == os.getuid()
    assert re.search(r"console session #1 \(pid \d+ uid \d+\) opened", p.output)
    wait_ticking(tick)  # the pod runs on
    assert p.proc.poll() is None


def test_two_sessions_have_isolated_output(pod: Start, attach: Client, tmp_path: Path) -> None:
    p = pod("beans.idle")
    p.socket()
    one, two = attach(), attach()
    one.prompt()
    two.prompt()
    one.run("import pprint; pprint.pprint({'pp' + 'rint': list(range(3))})", "{'pprint': [0, 1, 2]}")
    one.run("help(len)", "Return the number of " + "items in a container")
    one.run("import sys; sys.stderr.write('to-' + 'stderr\\n')", "to-stderr")
    one.run("async def later(): await asyncio.sleep(0.3); print('task-' + 'output')")
    one.run("t = asyncio.create_task(later())")
    one.child.expect_exact("task-output")  # printed by a task the session started, after its statement ended
    one.run("b = add('beans.say')")
    one.child.expect_exact("bean-says")  # and by a bean it started
    one.run("1/0", "ZeroDivisionError")
    two.run("'two' + '-alive'", "two-alive")
    for marker in ("pprint", "items in a container", "to-stderr", "task-output", "bean-says", "ZeroDivisionError"):
        assert marker not in two.seen, marker
        assert marker not in p.output, marker
    two.run("x = 1")
    one.run("x", "NameError")  # and no shared variables


def test_ctrl_c_stops_a_blocking_statement_and_the_heartbeat_resumes(
    pod: Start, attach: Client, tmp_path: Path, env: dict[str, str]
) -> None:
    tick = tmp_path / "ticks.txt"
    p = pod(f"beans.ticker:path={tick}")
    p.socket()
    a = attach(str(p.pid))
    a.prompt()
    a.child.sendline(SPIN)
    a.child.expect_exact("spinning")
    stuck = ticks(tick)
    time.sleep(0.5)  # let the loop be blocked for a while; what follows checks it was
    assert ticks(tick) <= stuck + 1
    a.child.sendcontrol("\\")  # while blocked, the session still answers: where is the loop?
    a.child.expect_exact("the pod's loop thread is here")
    a.child.expect_exact('File "<string>", line 2, in <module>')
    listing = cli(env, tmp_path, "ps")  # the console thread answers for a blocked pod
    assert re.search(rf"^{p.pid} +beans.ticker +\S+ +1 +1 ", listing.stdout, re.M), listing.stdout
    other = attach(str(p.pid))  # and a new session opens
    other.child.expect_exact("as session #2")
    other.prompt()
    a.child.sendintr()
    a.child.expect_exact("KeyboardInterrupt")
    a.prompt()
    wait_ticking(tick)
    a.run("'still' + ' here'", "still here")
    assert p.proc.poll() is None


#: ``while True: pass`` that says when it has started (it is one line at the prompt).
SPIN = "exec(\"print('spin' + 'ning', flush=True)\\nwhile True: pass\")"


def test_a_client_killed_mid_statement_frees_the_loop(pod: Start, attach: Client, tmp_path: Path) -> None:
    tick = tmp_path / "ticks.txt"
    p = pod(f"beans.ticker:path={tick}")
    p.socket()
    a = attach()
    a.prompt()
    a.child.sendline(SPIN)
    a.child.expect_exact("spinning")
    assert ticks(tick) == ticks(tick)
    a.child.kill(signal.SIGKILL)
    p.wait_for(r"console session #1 .* ended after")
    wait_ticking(tick)
    b = attach()
    b.prompt()
    b.run("await asyncio.sleep(0.01) or 'loop free'", "loop free")


# What another uid runs when it cannot load this checkout's aiopod (a clone in a 0700 folder,
# or pyenv's interpreters under /root): the same connection, made with the stdlib alone by
# an interpreter every uid can start. The pod speaks first, so its refusal is all there is to read.
RAW_ATTACH = """
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except PermissionError:
    sys.exit("aiopod: permission denied")
(size,) = struct.unpack("!I", s.recv(4, socket.MSG_WAITALL))
sys.exit("aiopod: the pod refused: " + json.loads(s.recv(size, socket.MSG_WAITALL))["message"])
"""


def test_another_uid_is_refused(pod: Start, tmp_path: Path, env: dict[str, str]) -> None:
    p = pod("beans.idle")
    path = p.socket()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    if os.getuid() != 0:
        pytest.skip("switching to another uid needs root")
    nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    attach = [sys.executable, "-m", "aiopod", "attach", "--no-history", str(path)]
    loads = subprocess.run([*nobody, sys.executable, "-c", "import aiopod.cli"], env=env, capture_output=True, cwd="/")
    if loads.returncode != 0:
        python = shutil.which("python3", path="/usr/bin:/bin")
        if python is None:
            pytest.skip("uid nobody can start neither this interpreter with aiopod nor /usr/bin/python3")
        attach = [python, "-I", "-c", RAW_ATTACH, str(path)]
    # The folder and socket permissions stop another user first...
    proc = subprocess.run([*nobody, *attach], env=env, capture_output=True, text=True, timeout=30, cwd="/")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "permission denied" in proc.stderr
    # ...and one who gets past them (CAP_DAC_OVERRIDE) meets the pod's peer check.
    bypass = [*nobody, "--inh-caps=+dac_override", "--ambient-caps=+dac_override"]
    proc = subprocess.run([*bypass, *attach], env=env, capture_output=True, text=True, timeout=30, cwd="/")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "the pod refused: uid 65534 may not attach to this pod" in proc.stderr
    p.wait_for(r"console socket: refused pid \d+ uid 65534 \(only uid 0 and root may attach\)")
    assert "session #" not in p.output


def test_pod_sigkilled_gives_attach_exit_1_and_a_message(pod: Start, attach: Client) -> None:
    p = pod("beans.idle")
    p.socket()
    a = attach()
    a.prompt()
    p.proc.kill()
    a.child.expect_exact("aiopod: the pod went away (connection closed)")
    assert a.exit_status() == 1


def test_sigterm_and_sighup_to_attach_restore_the_terminal(pod: Start, attach: Client, tmp_path: Path) -> None:
    p = pod("beans.idle")
    p.socket()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        script = f"{sys.executable} -m aiopod attach --no-history; echo status=$?; stty -a"
        a = attach(command=["sh", "-c", script])
        a.prompt()
        a.wait_raw()  # what the signal must undo
        pid = int(subprocess.check_output(["pgrep", "-P", str(a.child.pid), "-f", "aiopod attach"]).split()[0])
        os.kill(pid, sig)
        a.child.expect_exact(f"attach ended by {sig.name}; the pod runs on")
        a.child.expect_exact("status=1")
        a.child.expect(r"(-?)icanon")
        assert a.child.match[1] == "", "canonical mode was not restored"
        a.child.expect(r" (-?)echo ")
        assert a.child.match[1] == "", "echo was not restored"
        assert a.exit_status() == 0
    assert p.proc.poll() is None


def test_socket_is_0600_and_removed_at_exit(pod: Start) -> None:
    p = pod("beans.idle")
    path = p.socket()
    info = path.stat()
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    p.proc.send_signal(signal.SIGTERM)
    assert p.wait() == 0
    assert not path.exists()


def test_ps_lists_two_pods_and_attach_refuses_to_guess(
    pod: Start, attach: Client, tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "web.py").write_text("BEANS = [{'core': 'beans.idle'}]\n")
    first, second = pod("-c", "web.py"), pod("beans.idle")
    first.socket()
    second.socket()
    listing = cli(env, tmp_path, "ps")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["PID", "NAME", "UPTIME", "BEANS", "SESSIONS", "SOCKET"]
    rows = {int(line.split()[0]): line.split() for line in lines[1:]}
    assert rows[first.pid][1] == "web" and rows[first.pid][3] == "1"
    assert rows[second.pid][1] == "beans.idle"
    assert rows[second.pid][5] == str(tmp_path / "run" / "aiopod" / f"{second.pid}.sock")
    refused = cli(env, tmp_path, "attach")
    assert refused.returncode == 2
    assert "2 pods are running; name one (pid or name)" in refused.stderr
    assert str(first.pid) in refused.stderr and str(second.pid) in refused.stderr
    by_name = attach("web")
    by_name.child.expect_exact(f"attached to pod web (pid {first.pid})")
    by_name.prompt()
    by_path = attach(str(second.socket()))
    by_path.child.expect_exact(f"(pid {second.pid})")
    unknown = cli(env, tmp_path, "attach", "nosuchpod")
    assert unknown.returncode == 1
    assert "no running pod is named 'nosuchpod' (running: beans.idle, web" in unknown.stderr


def test_a_second_pod_on_a_live_socket_path_exits_2(pod: Start, tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    first = pod("--console-socket", str(path), "beans.idle")
    first.socket(path)
    second = pod("--console-socket", str(path), "beans.idle")
    assert second.wait() == 2
    assert f"aiopod: error: console socket {path} is served by another live pod" in second.output
    assert first.proc.poll() is None and path.exists()


def test_console_socket_setting_and_no_console_socket(pod: Start, tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "from-config.sock"
    (tmp_path / "conf.py").write_text(f"CONSOLE_SOCKET = {str(path)!r}\nBEANS = [{{'core': 'beans.idle'}}]\n")
    p = pod("-c", "conf.py")
    p.socket(path)
    off = pod("--no-console-socket", "beans.ready")
    (tmp_path / "none.py").write_text("CONSOLE_SOCKET = None\nBEANS = [{'core': 'beans.ready'}]\n")
    none = pod("-c", "none.py")
    env_off = {**env, "AIOPOD_CONSOLE_SOCKET": "none"}
    by_env = Pod(tmp_path, env_off, "beans.ready")
    try:
        for quiet in (off, none, by_env):
            quiet.wait_for("ready")
        listed = cli(env, tmp_path, "ps").stdout.splitlines()
        assert len(listed) == 2, listed  # the header and the pod with a socket of its own choosing
        assert listed[1].split()[0] == str(p.pid) and listed[1].split()[-1] == str(path)
        for quiet in (off, none, by_env):
            assert "console socket" not in quiet.output
    finally:
        by_env.stop()
    nowhere = cli(env, tmp_path, "run", "--console-socket", str(tmp_path / "no" / "such.sock"), "beans.idle")
    assert nowhere.returncode == 2
    assert nowhere.stderr == f"aiopod: error: console socket: cannot serve {tmp_path}/no/such.sock: no folder " \
        f"{tmp_path}/no; give --console-socket PATH or --no-console-socket\n"  # fmt: skip
    (tmp_path / "bad.py").write_text("CONSOLE_SOCKET = 5\nBEANS = [{'core': 'beans.idle'}]\n")
    bad = cli(env, tmp_path, "run", "-c", "bad.py")
    assert bad.returncode == 2
    assert "bad.py: CONSOLE_SOCKET 5 is not a path" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_stale_sockets_of_dead_pods_are_cleaned(pod: Start, tmp_path: Path, env: dict[str, str]) -> None:
    import socket as socketlib

    folder = tmp_path / "run" / "aiopod"
    folder.mkdir(mode=0o700, parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = folder / f"{dead.pid}.sock"
    leftover = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
    leftover.bind(str(stale))  # a pod that was SIGKILLed leaves its socket behind
    leftover.close()
    assert stale.exists()
    listing = cli(env, tmp_path, "ps")
    assert listing.returncode == 0
    assert "no running pod serves a console socket" in listing.stdout
    assert not stale.exists()


def test_stop_from_a_session_asks_first_and_h_says_what_it_means(pod: Start, attach: Client) -> None:
    p = pod("beans.idle")
    p.socket()
    a = attach()
    a.prompt()
    help_text = a.run("h()", "sessions()")
    assert "leave this session (also Ctrl-D); the pod runs on" in help_text
    assert "stop the POD for everyone" in help_text
    a.child.sendline("stop()")
    a.child.expect_exact("Stop the pod? [y/N]")
    a.child.sendline("n")
    a.child.expect_exact("the pod runs on")
    a.prompt()
    assert p.proc.poll() is None
    a.run("sessions()", "#1 (you)")
    a.child.sendline("stop(confirm=True)")
    assert a.exit_status() == 0
    assert p.wait() == 0


def test_a_pod_that_stops_ends_its_sessions_with_a_line(pod: Start, attach: Client) -> None:
    p = pod("beans.idle")
    p.socket()
    a = attach()
    a.prompt()
    p.proc.send_signal(signal.SIGTERM)
    a.child.expect_exact("aiopod: the pod is stopping (SIGTERM)")
    assert a.exit_status() == 1
    assert p.wait() == 0


def test_no_key_from_a_client_suspends_the_pod_or_runs_a_program_there(
    pod: Start, attach: Client, tmp_path: Path, env: dict[str, str]
) -> None:
    tick = tmp_path / "ticks.txt"
    p = pod(f"beans.ticker:path={tick}")
    p.socket()
    editor = tmp_path / "editor.sh"
    editor.write_text(f"#!/bin/sh\necho $PPID > {tmp_path}/editor-parent\necho \"'edit' + 'ed'\" > \"$1\"\n")
    editor.chmod(0o755)
    env["EDITOR"] = env["VISUAL"] = str(editor)
    a = attach()
    a.prompt()
    # Ctrl-Z suspends the process that draws the prompt (the client; under pexpect its
    # process group is orphaned, so the kernel drops the SIGTSTP): never the pod.
    a.child.sendcontrol("z")
    wait_ticking(tick)
    assert _state(p.pid) != "T"
    a.child.sendcontrol("x")
    a.child.sendcontrol("e")  # $EDITOR runs here, in the client's process, not in the pod's
    a.child.expect_exact("edited")
    a.prompt()
    assert int((tmp_path / "editor-parent").read_text()) == a.child.pid
    a.run("'still' + ' attached'", "still attached")
    # input() would read the pod's own stdin (its terminal, under a shell): it says so instead.
    a.run("input('name? ')", "input() in a remote session would read the pod's own stdin")
    wait_ticking(tick)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_default_socket_folder_that_cannot_be_made_leaves_the_pod_running(
    tmp_path: Path, env: dict[str, str]
) -> None:
    blocked = tmp_path / "run" / "aiopod"
    blocked.write_text("not a folder")  # where the socket folder should be
    proc = cli(env, tmp_path, "run", "beans.ready_then_end")
    assert proc.returncode == 0, proc.stderr
    assert "ready" in proc.stdout
    assert re.search(r"WARNING aiopod.console: console socket: .*; this pod serves none", proc.stderr), proc.stderr


def test_attach_needs_no_pod_to_say_there_is_none(tmp_path: Path, env: dict[str, str]) -> None:
    proc = cli(env, tmp_path, "attach")
    assert proc.returncode == 1
    assert "no running pod of uid" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_tab_completes_from_the_pods_live_namespace(pod: Start, attach: Client) -> None:
    p = pod("beans.idle")
    p.socket()
    a = attach()
    a.prompt()
    a.run("marker_for_completion = 41")
    a.run("w = add('beans.idle', label='work' + 'er')")
    for typed, offered, rest, shown in [
        ("marker_for_com", "marker_for_completion", " + 1", "42"),  # a name of this session
        ("pod.bean_hi", "bean_history", " + 1", "1001"),  # an attribute of a live object
        ("where('wor", "worker", ")", "in idle"),  # a bean label
    ]:
        a.child.send(typed)
        a.child.expect_exact(offered)  # completing while typing: the pod's answer is in the menu
        a.child.send("\t")  # Tab takes the first
        a.run(rest, shown)


#: What a session needs and a pod nobody attaches to never imports (README row 3).
SESSION_MODULES = (
    "aiopod.console.evaluator",
    "aiopod.console.namespace",
    "aiopod.console._completions",
    "pydoc",
    "json",  # the frames
    "dataclasses",  # the evaluator's; the runtime has none
)


def test_a_pod_imports_the_session_machinery_when_the_first_client_attaches(
    pod: Start, attach: Client, tmp_path: Path
) -> None:
    (tmp_path / "modules.py").write_text(
        "import asyncio, sys\n"
        f"LAZY = {SESSION_MODULES!r}\n"
        "def loaded(when):\n"
        "    print('loaded ' + when + ':', *[m for m in LAZY if m in sys.modules], flush=True)\n"
        "async def report(**kw):\n"
        "    loaded('at start')\n"
        "    await asyncio.sleep(3600)\n"
    )
    p = pod("modules.report")
    p.socket()
    assert p.wait_for(r"loaded at start:(.*)\n")[1] == ""
    a = attach()
    a.prompt()
    # The client asks for completions as one types: the statement has brought the completer in too.
    a.run("__import__('modules').loaded('now')", "loaded now: " + " ".join(SESSION_MODULES))
    a.child.send("pod.bean_hi")
    a.child.expect_exact("bean_history")
    a.child.send("\t")
    a.run(" + 1", "1001")
    a.run("help(len)", "Return the number of items in a container.")


def test_aiopod_shell_serves_its_console_socket_too(attach: Client, tmp_path: Path, env: dict[str, str]) -> None:
    shell = attach(command=[sys.executable, "-m", "aiopod", "shell", "--no-history", "beans.idle"])
    shell.prompt()
    path = tmp_path / "run" / "aiopod" / f"{shell.child.pid}.sock"
    wait_until(path.exists, what=f"{path}")
    remote = attach(str(shell.child.pid))
    remote.prompt()
    remote.run("print('only' + ' here'); where_am_i = 'remote'", "only here")
    shell.run("'where_am_i' in dir()", "False")  # its own variables
    assert "only here" not in shell.seen
    remote.child.sendline("exit()")
    assert remote.exit_status() == 0
    shell.child.sendline("exit()")
    assert shell.exit_status() == 0
    assert not path.exists()


def test_the_users_ptpython_config_is_the_clients(
    pod: Start, attach: Client, tmp_path: Path, env: dict[str, str]
) -> None:
    config = tmp_path / "config" / "ptpython" / "config.py"
    config.parent.mkdir(parents=True)
    config.write_text("def configure(repl):\n    repl.prompt_style = 'ipython'\n")
    p = pod("beans.idle")
    p.socket()
    a = attach()
    a.child.expect_exact("In [1]:")  # the user's prompt style, drawn by the client
    a.child.sendline("exit()")
    assert a.exit_status() == 0
    plain = attach("--no-ptpython-config")
    plain.prompt()
    plain.run("'classic'", "'classic'")
    plain.child.sendline("exit()")
    assert plain.exit_status() == 0
    broken = tmp_path / "broken.py"
    broken.write_text("def configure(repl):\n    raise RuntimeError('my config broke')\n")
    chosen = attach("--ptpython-config", str(broken))
    chosen.child.expect_exact("RuntimeError: my config broke")  # said, and the session goes on
    chosen.prompt()
    chosen.run("'still' + ' here'", "still here")


def test_ctrl_c_cancels_an_awaiting_statement(pod: Start, attach: Client) -> None:
    p = pod("beans.idle")
    p.socket()
    a = attach()
    a.prompt()
    a.child.sendline("print('wait' + 'ing'); await asyncio.sleep(3600)")
    a.child.expect_exact("waiting")
    a.child.sendintr()
    a.child.expect_exact("KeyboardInterrupt (the statement was cancelled; the pod runs on)")
    a.prompt()
    a.run("'after' + ' it'", "after it")
    assert p.proc.poll() is None


def test_history_is_kept_per_pod_name_in_the_clients_state_folder(
    pod: Start, tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "web.py").write_text("BEANS = [{'core': 'beans.idle'}]\n")
    p = pod("-c", "web.py")
    p.socket()
    client = Attach(tmp_path, env, command=[sys.executable, "-m", "aiopod", "attach", "web"])
    try:
        client.prompt()
        client.run("remembered = 'yes'")
        client.child.sendline("exit()")
        assert client.exit_status() == 0
    finally:
        client.close()
    history = tmp_path / "state" / "aiopod" / "attach" / "web.history"
    assert "+remembered = 'yes'" in history.read_text()


def test_sessions_lists_who_is_attached_and_what_they_run(pod: Start, attach: Client) -> None:
    p = pod("beans.idle")
    p.socket()
    busy = attach()
    busy.child.expect_exact("as session #1")
    busy.prompt()
    looking = attach()
    looking.child.expect_exact("as session #2")
    looking.prompt()
    busy.child.sendline("print('sleep' + 'ing'); await asyncio.sleep(3600)")
    busy.child.expect_exact("sleeping")
    table = looking.run("sessions()", "#2 (you)")
    uid = os.getuid()
    assert re.search(rf"#1 +pid {busy.child.pid} +{uid} +[\d.]+s ago +print\('sleep' \+ 'ing'\); await asyncio", table)
    assert re.search(rf"#2 \(you\) +pid {looking.child.pid} +{uid} +[\d.]+s ago +sessions\(\)", table), table
    busy.child.sendintr()
    busy.prompt()
