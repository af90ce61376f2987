"""The seed's README (os-aio-pod 0.1.40), run as its users wrote it: the ``os-aio-pod`` command,
``os_aio_pod.*`` imports and core strings, its config file. Each test asserts what the beans
received or printed and the exit status.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.proc import Proc

Write = Callable[[str, str], Path]

SCRIPT = shutil.which("os-aio-pod", path=str(Path(sys.executable).parent))
DEPRECATED = "aiopod: warning: 'os-aio-pod' is deprecated; run 'aiopod' (same commands and options)"

# The seed's own examples/hello_world.py, as shipped in os_aio_pod 0.1.40.
SEED_HELLO_WORLD = """
import asyncio


class HelloWorld(object):
    def __init__(self, context):
        self.context = context

    async def __call__(self, **kwargs):
        print("hello world!")
        print("kwargs", kwargs)
        print("sleep 1s")
        await asyncio.sleep(1)
"""


def os_aio_pod(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Proc:
    """The installed ``os-aio-pod`` console script, as the seed's users type it."""
    assert SCRIPT is not None, "the os-aio-pod console script is not installed next to the interpreter"
    return Proc([SCRIPT, *args], cwd=cwd, env=env)


def lines(out: str) -> list[str]:
    """The output without log lines (they carry a time stamp)."""
    return [line for line in out.splitlines() if not line[:4].isdigit()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_quick_start(write: Write, tmp_path: Path) -> None:
    # "1. Write your coroutine function ... 2. run with os-aio-pod": os-aio-pod run example.helloworld:hi="Ozzy"
    write(
        "example.py",
        """
        import asyncio
        async def helloworld(**kwargs):
            await asyncio.sleep(1)
            print("hello world!", kwargs)
        """,
    )
    proc = os_aio_pod("run", "example.helloworld:hi=Ozzy", cwd=tmp_path)  # the shell removes the quotes
    assert proc.wait() == 0, proc.output
    assert lines(proc.output) == [DEPRECATED, "hello world! {'hi': 'Ozzy'}"]


def test_the_three_coroutine_kinds_and_pass_context_with_a_label(write: Write, tmp_path: Path) -> None:
    write(
        "kinds.py",
        """
        import asyncio
        from os_aio_pod.decorators import pass_context

        async def hello_world(**kwargs):
            print('hello world!')
            await asyncio.sleep(1)
        hello = hello_world()

        class HelloWorld(object):
            def __init__(self, context):
                self.context = context
            async def __call__(self, **kwargs):
                print('hello world!', type(self.context).__name__, kwargs)
                await asyncio.sleep(1)

        @pass_context(label="app")
        async def with_context(context, **kwargs):
            print(context.label, kwargs)
        """,
    )
    proc = os_aio_pod(
        "run", "kinds.hello", "kinds.hello_world", "kinds.HelloWorld:k=v", "kinds.with_context:a=1", cwd=tmp_path
    )
    assert proc.wait() == 0, proc.output
    out = lines(proc.output)
    assert out[:2] == [
        DEPRECATED,
        "aiopod: warning: os_aio_pod.decorators is deprecated: import from aiopod.decorators (the same objects); "
        "os_aio_pod is now aiopod",
    ]
    assert sorted(out[2:]) == ["app {'a': '1'}", "hello world!", "hello world!", "hello world! BeanContext {'k': 'v'}"]


def test_the_config_file_with_key1_by_c_and_config_file(write: Write, tmp_path: Path) -> None:
    write("hello_world.py", SEED_HELLO_WORLD)
    write(
        "config.py",
        """
        BEANS = [
            {
                'core' : 'hello_world.HelloWorld',
                'label': 'first-bean',
                'key1' : 'value1',
            }
        ]

        LOG_LEVEL      = 'debug'
        LOOP_TYPE      = 'asyncio'
        DEBUG          = False
        """,
    )
    for option in ("-c", "--config-file", "--config"):
        proc = os_aio_pod("run", option, "config.py", cwd=tmp_path)
        assert proc.wait() == 0, proc.output
        assert lines(proc.output) == [DEPRECATED, "hello world!", "kwargs {'key1': 'value1'}", "sleep 1s"]
        assert " DEBUG " in proc.output  # LOG_LEVEL = 'debug' took effect


def test_the_seeds_own_example_and_contrib_core_strings(write: Write, tmp_path: Path) -> None:
    write(
        "config.py",
        """
        BEANS = [
            {'core': 'os_aio_pod.examples.hello_world.HelloWorld', 'key1': 'value1'},
            {'core': 'os_aio_pod.contrib.simple.Server'},
        ]
        """,
    )
    proc = os_aio_pod("run", "-c", "config.py", cwd=tmp_path)
    assert proc.wait() == 0, proc.output
    out = lines(proc.output)
    assert out[1] == (
        "aiopod: warning: os_aio_pod.examples.hello_world is deprecated: it is the seed's example; "
        "copy HelloWorld into your project; os_aio_pod is now aiopod"
    )
    assert out[2:] == ["hello world!", "kwargs {'key1': 'value1'}", "sleep 1s"]


def test_a_simple_server_subclass_stops_on_sigterm(write: Write, tmp_path: Path) -> None:
    write(
        "your_server.py",
        """
        import asyncio
        from os_aio_pod.contrib.simple import Server

        class YourServer(Server):
            # can be async/sync
            async def startup(self, **kwargs):
                print("startup", kwargs, flush=True)
            # can be async/sync
            async def cleanup(self, **kwargs):
                print("cleanup", flush=True)
            async def run(self, **kwargs):
                while not self.stopping:
                    await asyncio.sleep(0.05)
                print("run ends", flush=True)
            # on kill(Ctrl+C)
            def on_stop(self, **kwargs):
                print("on_stop", flush=True)
                self.stopping = True
        """,
    )
    write("config.py", "BEANS = [{'core': 'your_server.YourServer', 'key': 'v'}]\n")
    proc = os_aio_pod("run", "-c", "config.py", cwd=tmp_path)
    proc.wait_for("startup {'key': 'v'}")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0, proc.output
    out = lines(proc.output)
    assert out[-3:] == ["on_stop", "run ends", "cleanup"]


def test_a_pcflow_subclass_from_the_readme(write: Write, tmp_path: Path) -> None:
    write(
        "flow.py",
        """
        import asyncio
        from os_aio_pod.contrib.pcflow import Server
        class YourProducerConsumerServer(Server):
            def startup(self, **kwargs):
                self.stopping = False
            def on_stop(self, **kwargs):
                self.stopping = True
            async def produce(self, **kwargs):
                while not self.stopping:
                    await asyncio.sleep(0.05)
                    yield 1
            async def consume(self, obj, **kwargs):
                print("consumed", obj, flush=True)
        """,
    )
    write("config.py", "BEANS = [{'core': 'flow.YourProducerConsumerServer', 'consumer_num': 10}]\n")
    proc = os_aio_pod("run", "-c", "config.py", cwd=tmp_path)
    proc.wait_for("consumed 1")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0, proc.output
    assert "Traceback" not in proc.output


ECHO_SERVER = """
from os_aio_pod.contrib.tcp_server import Server

class EchoServer(Server):
    async def on_start(self):
        async def stopping(**kwargs):  # the seed's own tcp_server read kwargs["keys"]
            for sig in kwargs["keys"]:
                print("handler got", sig, flush=True)

        await self.context.add_signal_handler("SIGTERM", stopping)
        print("listening on", self.config.port, flush=True)

    async def on_connect(self, reader, writer):
        writer.write(b"echo: " + await reader.readline())
        await writer.drain()

    async def on_signal(self, sig):
        print("on_signal", sig, flush=True)
"""


def test_a_tcp_server_from_a_lower_case_bean_config_file_and_a_seed_signal_handler(
    write: Write, tmp_path: Path
) -> None:
    port = free_port()
    write("echo.py", ECHO_SERVER)
    # The bean's config_file holds lower-case settings: the seed passed every public name.
    write("tcp_settings.py", f"port = {port}\nserver = 'echo.EchoServer'\n")
    write(
        "config.py",
        "BEANS = [{'core': 'os_aio_pod.contrib.tcp_server.TCPServerAdapter', 'config_file': 'tcp_settings.py'}]\n",
    )
    proc = os_aio_pod("run", "-c", "config.py", cwd=tmp_path)
    proc.wait_for(f"listening on {port}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"hi\n")
        assert sock.makefile("rb").readline() == b"echo: hi\n"
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0, proc.output
    out = lines(proc.output)
    assert "handler got SIGTERM" in out and "on_signal SIGTERM" in out


def test_the_uvicorn_adapter_by_its_seed_path_gives_the_app_its_context(write: Write, tmp_path: Path) -> None:
    port = free_port()
    write(
        "web.py",
        """
        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            body = type(app.aio_pod_context).__name__.encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
        """,
    )
    write(
        "config.py",
        f"BEANS = [{{'core': 'os_aio_pod.contrib.uvicorn.UvicornAdapter', 'app': 'web:app', 'port': {port}}}]\n",
    )
    proc = os_aio_pod("run", "-c", "config.py", cwd=tmp_path)
    proc.wait_for(f"127.0.0.1:{port}", timeout=20)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
        assert response.read() == b"BeanContext"
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0, proc.output


STUBBORN = """
import asyncio, json, logging

async def stubborn(**kwargs):  # no stop handler: the pod cancels it after STOP_WAIT_TIME
    logging.getLogger("app").debug("a debug line")
    print(json.dumps({"loop": type(asyncio.get_running_loop()).__module__}), flush=True)
    await asyncio.Event().wait()
"""


def test_os_aio_pod_environment_variables_are_read_with_one_deprecation_line(write: Write, tmp_path: Path) -> None:
    write("app.py", STUBBORN)
    env = {"OS_AIO_POD_STOP_WAIT_TIME": "1", "OS_AIO_POD_LOG_LEVEL": "debug"}
    proc = os_aio_pod("run", "app.stubborn", cwd=tmp_path, env=env)
    proc.wait_for('{"loop"')
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0, proc.output
    assert "SIGTERM: stopping; waiting up to 1 s for 1 running beans" in proc.output
    assert "a debug line" in proc.output
    warnings = [line for line in proc.output.splitlines() if "OS_AIO_POD_" in line]
    assert warnings == [
        "aiopod: warning: OS_AIO_POD_STOP_WAIT_TIME, OS_AIO_POD_LOG_LEVEL: OS_AIO_POD_* variables are deprecated; "
        "rename them AIOPOD_STOP_WAIT_TIME, AIOPOD_LOG_LEVEL"
    ]


def test_an_aiopod_variable_wins_over_the_seeds_and_the_line_says_so(write: Write, tmp_path: Path) -> None:
    write("app.py", "async def show(**kw):\n    pass\n")
    env = {"OS_AIO_POD_STOP_WAIT_TIME": "1", "AIOPOD_STOP_WAIT_TIME": "2"}
    proc = os_aio_pod("run", "app.show", "--log-level", "debug", cwd=tmp_path, env=env)
    assert proc.wait() == 0, proc.output
    assert (
        "aiopod: warning: OS_AIO_POD_STOP_WAIT_TIME: OS_AIO_POD_* variables are deprecated; rename them "
        "AIOPOD_STOP_WAIT_TIME; OS_AIO_POD_STOP_WAIT_TIME is ignored: AIOPOD_STOP_WAIT_TIME is set"
    ) in proc.output.splitlines()


def test_debug_true_turns_on_debug_logging_and_the_default_loop_is_uvloop(write: Write, tmp_path: Path) -> None:
    pytest.importorskip("uvloop")
    write("app.py", STUBBORN.replace("await asyncio.Event().wait()", "return"))
    write("config.py", "DEBUG = True\nBEANS = [{'core': 'app.stubborn'}]\n")
    proc = os_aio_pod("run", "-c", "config.py", cwd=tmp_path)
    assert proc.wait() == 0, proc.output
    assert "DEBUG   app: a debug line" in proc.output
    assert json.loads(next(line for line in lines(proc.output) if line.startswith("{"))) == {"loop": "uvloop"}


def test_quick_start_label_is_the_beans_label(write: Write, tmp_path: Path) -> None:
    write(
        "app.py",
        """
        from aiopod import pass_context

        @pass_context
        async def show(context, **kwargs):
            print(context.label, kwargs, [b.label for b in context.get_beans("foo")], flush=True)
        """,
    )
    proc = os_aio_pod("run", "app.show:label=foo,x=1", cwd=tmp_path)
    assert proc.wait() == 0, proc.output
    assert lines(proc.output)[1:] == ["foo {'x': '1'} ['foo']"]


def test_pod_stop_takes_the_seeds_timeout(write: Write, tmp_path: Path) -> None:
    write(
        "app.py",
        """
        import asyncio
        from aiopod import pass_context

        @pass_context
        async def stopper(context, **kwargs):
            context.pod.stop(1)  # the seed's stop(timeout)

        async def stubborn(**kwargs):
            await asyncio.Event().wait()
        """,
    )
    proc = os_aio_pod("run", "app.stopper", "app.stubborn", cwd=tmp_path)
    assert proc.wait() == 0, proc.output
    assert "SIGTERM: stopping; waiting up to 1 s for 2 running beans" in proc.output
    assert "cancelling 1 beans still running: #2 (app.stubborn)" in proc.output
    assert "1: stopping" not in proc.output


def test_import_errors_name_what_is_missing(write: Write, tmp_path: Path) -> None:
    write("myapp/__init__.py", "")
    write("myapp/web.py", "import not_installed\n\nclass App:\n    pass\n")
    write("myapp/broken.py", "async def f(:\n    pass\n")
    write(
        "config.py",
        """
        BEANS = [
            {'core': 'myapp.web.App'},
            {'core': 'myapp.broken.f'},
            {'core': 'os_aio_pod.contrib.uvicorn.UvicornAdapter', 'app': 'web:app'},
            {'core': 'aiopod.contrib.uvicorn.UvicornAdapter', 'app': 'web:app'},
        ]
        """,
    )
    # uvicorn is installed here: hide it (a None entry in sys.modules makes its import fail).
    hide = "import sys; sys.modules['uvicorn'] = None; from os_aio_pod.main import main; main()"
    proc = Proc([sys.executable, "-c", hide, "run", "-c", "config.py"], cwd=tmp_path)
    assert proc.wait() == 2, proc.output
    assert "Traceback" not in proc.output
    errors = [line.removeprefix("aiopod: error: ") for line in proc.output.splitlines() if "error:" in line]
    adapter = Path(__import__("aiopod.contrib", fromlist=["x"]).__file__).parent / "uvicorn.py"  # type: ignore[arg-type]
    line = next(n for n, text in enumerate(adapter.read_text().splitlines(), 1) if text == "import uvicorn")
    extra = f"{adapter}:{line}: no module named 'uvicorn': install it with pip install 'aiopod[uvicorn]'"
    assert errors == [
        f"config.py: BEANS[0].core: cannot import 'myapp.web.App': {tmp_path.resolve()}/myapp/web.py:1: "
        "no module named 'not_installed' (is it installed, or is the current directory the one holding it?)",
        f"config.py: BEANS[1].core: cannot import 'myapp.broken.f': {tmp_path.resolve()}/myapp/broken.py:1: "
        "syntax error: invalid syntax",
        f"config.py: BEANS[2].core: cannot import 'os_aio_pod.contrib.uvicorn.UvicornAdapter': {extra}",
        f"config.py: BEANS[3].core: cannot import 'aiopod.contrib.uvicorn.UvicornAdapter': {extra}",
    ]
