"""The ``aiopod`` command: a thin skin over plain functions that embedders can call too."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, NoReturn

import click

from . import __version__, _early
from .pod._process import PodProcess
from .pod.config import LOOP_TYPES, BeanSpec, PodConfig, describe_exception, load
from .pod.errors import AiopodDeprecationWarning, ConfigError, StartupInterrupted
from .pod.pod import Pod
from .pod.runner import options_from, run_pod


def pod_options(command: Any) -> Any:
    """The options ``run`` and ``shell`` share."""
    options = [
        click.option("-c", "--config-file", "--config", "config_path", metavar="FILE", help="Config file (Python)."),
        click.option("-l", "--log-level", help="DEBUG, INFO, WARNING, ERROR or CRITICAL."),
        click.option("--loop-type", type=click.Choice(LOOP_TYPES, case_sensitive=False), help="Event loop."),
        click.option(
            "--stop-wait-time",
            metavar="SECONDS",  # checked with the config's STOP_WAIT_TIME: one error line naming the option
            help="Seconds beans get to end after SIGINT/SIGTERM before they are cancelled (default 5; none: for ever).",
        ),
        click.option("--debug/--no-debug", default=None, help="asyncio debug mode, slow-callback logs, tracebacks."),
        click.option(
            "--bean-history",
            type=click.IntRange(min=0),
            metavar="N",
            help="Ended beans kept for ps() and lookups (default 1000); older ones are dropped.",
        ),
        click.option(
            "--watchdog/--no-watchdog",
            default=None,
            help="The loop monitor: lag, and a warning with the stack when a bean blocks the loop (default on).",
        ),
        click.option(
            "--telnet",
            metavar="[HOST:]PORT",
            help="Serve the console over telnet too (loopback unless AIOPOD_TELNET_PASSWORD is set).",
        ),
        click.option(
            "--console-socket",
            metavar="PATH",
            help="Unix socket for 'aiopod attach' (default: $XDG_RUNTIME_DIR/aiopod/PID.sock).",
        ),
        click.option(
            "--no-console-socket",
            "no_console_socket",
            is_flag=True,
            default=None,
            help="Serve no console socket.",
        ),
        click.argument("beans", nargs=-1),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def prepare(
    config_path: str | None,
    beans: tuple[str, ...],
    *,
    log_level: str | None,
    loop_type: str | None,
    stop_wait_time: float | str | None,
    debug: bool | None,
    telnet: str | None = None,
    bean_history: int | None = None,
    watchdog: bool | None = None,
    console_socket: str | None = None,
    no_console_socket: bool | None = None,
) -> PodConfig:
    """Make the current directory importable (as ``python -m`` would), then load the config.

    The config file's folder goes before it (``load`` puts it there).
    """
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    if no_console_socket:  # "none", not None: a None option means "not given"
        console_socket = "none"
    options = options_from(
        {
            "log_level": log_level,
            "loop_type": loop_type,
            "stop_wait_time": stop_wait_time,
            "debug": debug,
            "bean_history": bean_history,
            "watchdog": watchdog,
            "console_socket": console_socket,
        }
    )
    # Taken out of the environment: beans, their child processes and console sessions
    # could read it there (it never becomes a config key either).
    password = os.environ.pop("AIOPOD_TELNET_PASSWORD", None)
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AiopodDeprecationWarning)
            settings = load(config_path, beans, options)
    finally:
        for warning in caught:  # os_aio_pod names in the config: one line, like the notices
            if issubclass(warning.category, AiopodDeprecationWarning):
                click.echo(f"aiopod: warning: {warning.message}", err=True)
            else:
                warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    for notice in settings.notices:
        click.echo(f"aiopod: warning: {notice}", err=True)
    if telnet:
        settings.beans.append(_telnet_spec(telnet, password))
    return settings


def _telnet_spec(address: str, password: str | None) -> BeanSpec:
    """``--telnet [HOST:]PORT`` as a TelnetConsole bean (the password comes from the environment)."""
    from .pod.config import make_spec

    host, _, port = address.rpartition(":")
    entry: dict[str, Any] = {
        "core": "aiopod.console.telnet:TelnetConsole",
        "label": "telnet",
        "host": host or "127.0.0.1",
        "port": port,
    }
    if password:
        from .console._door import PasswordCheck

        entry["password"] = PasswordCheck(password)  # the bean's kwargs hold a digest, not the password
    return make_spec(entry, f"--telnet {address}")


@contextlib.contextmanager
def pod_process() -> Iterator[PodProcess]:
    """Own the process signals before the config is imported, and end the process when done.

    A stop signal until the pod takes over abandons the start (importing can be slow, or
    stuck in C: then the process still ends within a second), with status 0.
    """
    process = PodProcess(ends_process=True)
    try:
        process.install()  # inside: a signal may come as soon as its handler is in, before install() returns
        process.replay(_early.take())  # what came while Python imported aiopod (the command held it)
        yield process
    except StartupInterrupted as exc:
        process.abandon_startup()
        # Nothing started: coroutine-object beans of an abandoned start are never awaited, on purpose.
        warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
        click.echo(f"aiopod: {exc.args[0]} while starting up: stopped before any bean ran", err=True)
        process.finish(0)


def fail(exc: BaseException, debug: bool) -> NoReturn:
    """One line per problem on stderr (a traceback only with --debug), then exit 2."""
    # Nothing started: coroutine-object beans of a rejected config are never awaited, on purpose.
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
    if debug:
        traceback.print_exception(exc)
    problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
    for problem in problems:
        click.echo(f"aiopod: error: {problem}", err=True)
    sys.exit(2)


def settings_or_fail(
    config_path: str | None, beans: tuple[str, ...], debug: bool | None, options: dict[str, Any]
) -> PodConfig:
    """``prepare``, with a bad config (or a stop signal while it imports) ending the process."""
    try:
        return prepare(config_path, beans, debug=debug, **options)
    except ConfigError as exc:
        fail(exc, bool(debug))
    except Exception as exc:  # a bug in a bean's check_kwargs, say: still one line, exit 2
        fail(ConfigError(f"loading the config failed: {describe_exception(exc)}"), bool(debug))


@contextlib.contextmanager
def serving_console(settings: PodConfig) -> Iterator[Callable[[Pod], None] | None]:
    """The pod's console socket for ``run_pod(setup=...)``; a bad setting or a busy path exits 2."""
    from .console.remote import console_socket
    from .console.sockets import ConsoleSocketError, SocketInUse

    try:
        with console_socket(settings) as setup:
            yield setup
    except ConfigError as exc:
        fail(exc, settings.debug)
    except SocketInUse as exc:
        message = f"console socket {exc.filename} is served by another live pod; give this one --console-socket PATH"
        fail(ConfigError(message + " or --no-console-socket"), settings.debug)
    except ConsoleSocketError as exc:
        fail(ConfigError(f"console socket: {exc.strerror}; give --console-socket PATH or --no-console-socket"), False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aiopod")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Run many asyncio coroutines ("beans") in one process, with a console on its loop."""
    if ctx.invoked_subcommand not in ("run", "shell"):
        _early.release()  # no pod takes the signals the command held: they act as they would have


@main.command()
@pod_options
def run(config_path: str | None, beans: tuple[str, ...], debug: bool | None, **options: Any) -> None:
    """Run beans headless until they all end, or until SIGINT/SIGTERM.

    BEANS are import strings with optional keyword arguments, as in the seed:
    'example.helloworld:hi=Ozzy,n=2' (escape a literal ',' or '=' as '\\,' '\\=').
    """
    with pod_process() as process:
        settings = settings_or_fail(config_path, beans, debug, options)
        if not settings.beans:
            fail(ConfigError("nothing to run: give -c CONFIG with BEANS, or beans such as 'example.helloworld'"), False)
        with serving_console(settings) as setup:
            try:
                status = run_pod(settings, setup=setup)
            except ConfigError as exc:
                fail(exc, settings.debug)
        process.finish(status)


@main.command()
@pod_options
@click.option("--no-history", is_flag=True, help="Do not read or write the console history file.")
@click.option(
    "--ptpython-config",
    type=click.Path(exists=True, dir_okay=False),
    help="ptpython config file to use (default: $XDG_CONFIG_HOME/ptpython/config.py, if it exists).",
)
@click.option("--no-ptpython-config", is_flag=True, help="Ignore the ptpython config file.")
def shell(
    config_path: str | None,
    beans: tuple[str, ...],
    debug: bool | None,
    no_history: bool,
    ptpython_config: str | None,
    no_ptpython_config: bool,
    **options: Any,
) -> None:
    """Start the pod with a Python console beside its event loop.

    exit(), stop() or Ctrl-D stop the pod gracefully. BEANS as for 'aiopod run'.
    """
    with pod_process() as process:
        from .console import run_shell  # the console's imports are not paid by 'aiopod run'

        settings = settings_or_fail(config_path, beans, debug, options)
        ptconfig: Path | Literal["default"] | None = "default"
        if no_ptpython_config or ptpython_config:
            ptconfig = None if no_ptpython_config else Path(str(ptpython_config))
        with serving_console(settings) as setup:
            status = run_shell(settings, history=not no_history, ptpython_config=ptconfig, setup=setup)
        process.finish(status)


@main.command()
def ps() -> None:
    """This user's running pods on this machine: pid, name, uptime, beans, console socket."""
    from .console.pods import ps_table, running_pods
    from .console.sockets import socket_dir

    pods = running_pods()
    if not pods:
        click.echo(f"no running pod serves a console socket in {socket_dir()}")
        return
    click.echo(ps_table(pods))


@main.command()
@click.argument("target", required=False, metavar="[PID|NAME|SOCKET|[HOST:]PORT]")
@click.option("--no-history", is_flag=True, help="Do not read or write this pod's attach history.")
@click.option(
    "--ptpython-config",
    type=click.Path(exists=True, dir_okay=False),
    help="ptpython config file to use (default: $XDG_CONFIG_HOME/ptpython/config.py, if it exists).",
)
@click.option("--no-ptpython-config", is_flag=True, help="Ignore the ptpython config file.")
def attach(target: str | None, no_history: bool, ptpython_config: str | None, no_ptpython_config: bool) -> None:
    """Attach this terminal to the console of a running pod.

    With no argument: the only pod running (see 'aiopod ps'). PID, NAME or SOCKET-PATH
    name a pod on this machine; [HOST:]PORT reaches a pod's telnet console.
    """
    from .console.pods import TargetError, is_telnet_address, resolve

    if target is not None and is_telnet_address(target):
        _attach_telnet(target)
    try:
        path = resolve(target)
    except TargetError as exc:
        if target is not None and target.isdigit():  # no pod has that pid: a telnet port, as before
            _attach_telnet(target)
        click.echo(f"aiopod: error: {exc}", err=True)
        sys.exit(exc.status)
    from .console.client import attach_socket
    from .pod import AttachError

    try:
        ptconfig: Path | Literal["default"] | None = "default"
        if no_ptpython_config or ptpython_config:
            ptconfig = None if no_ptpython_config else Path(str(ptpython_config))
        status = attach_socket(path, history=not no_history, ptpython_config=ptconfig)
    except AttachError as exc:
        click.echo(f"aiopod: error: {exc}", err=True)
        sys.exit(1)
    sys.exit(status)


def _attach_telnet(address: str) -> NoReturn:
    from .console.attach import attach as attach_to
    from .pod import AttachError

    try:
        status = attach_to(address)
    except AttachError as exc:
        click.echo(f"aiopod: error: {exc}", err=True)
        sys.exit(1)
    sys.exit(status)
