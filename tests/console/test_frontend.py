"""What the person sees in ``aiopod shell``: a real pty (pexpect), the screen rendered by pyte."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pyte
import pytest

from tests.console._pty import TICKER, shell_argv, spawn, ticks

ROWS, COLUMNS = 30, 100

BEANS = (
    TICKER
    + """
async def dots(**kw):
    await asyncio.sleep(0.5)
    for _ in range(10):
        print(".", end="", flush=True)
        await asyncio.sleep(0.1)
    print("|" + "end", flush=True)
"""
)

VI_AND_STATUS_BAR = """
def configure(repl):
    repl.vi_mode = True
    repl.show_status_bar = True
"""


def _wait_frozen(path: Path, timeout: float = 30) -> None:
    """Until the ticker bean has not ticked for half a second."""
    deadline = time.monotonic() + timeout
    last = ticks(path)
    while time.monotonic() < deadline:
        time.sleep(0.5)  # the interval that counts as frozen, not a synchronisation
        now = ticks(path)
        if now == last:
            return
        last = now
    pytest.fail("the ticker kept ticking: the statement did not block the loop")


class _Terminal(pyte.Screen):  # type: ignore[misc]
    """A pyte screen that answers the cursor position requests a terminal answers."""

    def __init__(self, child: pexpect.spawn) -> None:
        super().__init__(COLUMNS, ROWS)
        self.child = child

    def write_process_input(self, data: str) -> None:
        self.child.send(data)


class Screen:
    """``aiopod shell`` in a pseudo-terminal, and what its screen shows.

    The terminal answers prompt_toolkit's cursor position requests (CPR) as a real one
    does: without them prompt_toolkit does not know the screen's height and never draws
    ptpython's status bar.
    """

    def __init__(self, cwd: Path, *args: str) -> None:
        env = {**os.environ, "TERM": "xterm", "HOME": str(cwd), "XDG_CONFIG_HOME": str(cwd / "config")}
        for name in ("PTPYTHON_CONFIG_HOME", "PROMPT_TOOLKIT_NO_CPR"):
            env.pop(name, None)
        self.child = spawn(shell_argv(*args), cwd, env, timeout=30, dimensions=(ROWS, COLUMNS))
        self.screen = _Terminal(self.child)
        self.stream = pyte.Stream(self.screen)

    @property
    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    @property
    def cursor_line(self) -> str:
        return self.screen.display[self.screen.cursor.y].rstrip()

    def pump(self, timeout: float = 0.05) -> None:
        try:
            self.stream.feed(self.child.read_nonblocking(65536, timeout=timeout))
        except pexpect.TIMEOUT:
            pass

    def wait(self, check: Callable[[], object], what: str, timeout: float = 30) -> None:
        """Read the terminal until ``check()`` is true; fail with the screen after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; the screen shows:\n{self.text}")
            self.pump()

    def wait_text(self, text: str, timeout: float = 30) -> None:
        """Until ``text`` is on the screen, on one row or wrapped over several (a long path
        in a traceback wraps where its length puts it: pytest-9 and pytest-10 differ)."""
        self.wait(lambda: text in self.text or text in self.text.replace("\n", ""), repr(text), timeout)

    def wait_prompt(self, timeout: float = 30) -> None:
        """Until the cursor sits on an empty prompt line."""
        self.wait(lambda: self.cursor_line in (">>>", ">>> "), "an empty prompt", timeout)

    def type(self, keys: str) -> None:
        self.child.send(keys)

    def exit_status(self) -> int:
        self.child.expect(pexpect.EOF, timeout=30)
        self.child.close()
        assert self.child.exitstatus is not None, f"killed by signal {self.child.signalstatus}"
        return self.child.exitstatus


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Callable[..., Screen]]:
    (tmp_path / "beans.py").write_text(BEANS)
    started: list[Screen] = []

    def start(*args: str) -> Screen:
        started.append(Screen(tmp_path, *args))
        return started[-1]

    yield start
    for screen in started:
        if screen.child.isalive():
            screen.child.terminate(force=True)


def test_ctrl_c_stops_a_statement_that_blocks_the_loop(shell: Callable[..., Screen], tmp_path: Path) -> None:
    tick_file = tmp_path / "ticks.txt"
    sh = shell(f"beans.ticker:path={tick_file}")
    sh.wait_prompt()
    sh.type("print('blo' + 'cking')\r")
    sh.type("while True: pass\r")  # typed ahead: it runs after the print
    sh.wait_text("blocking")
    _wait_frozen(tick_file)  # the statement holds the loop: the ticker bean stops
    sh.type("\x03")  # Ctrl-C
    sh.wait_text("KeyboardInterrupt")
    sh.wait_prompt()
    resumed = ticks(tick_file)
    sh.wait(lambda: ticks(tick_file) > resumed + 20, "the ticker to tick again")
    sh.type("'re' + 'sumed'\r")
    sh.wait_text("'resumed'")
    sh.type("\x04")
    assert sh.exit_status() == 0


def test_help_prints_into_the_console_without_a_pager(shell: Callable[..., Screen], tmp_path: Path) -> None:
    tick_file = tmp_path / "ticks.txt"
    sh = shell(f"beans.ticker:path={tick_file}")
    sh.wait_prompt()
    sh.type("help(len)\r")
    sh.wait_text("Return the number of items in a container.")
    sh.wait_prompt()  # back at the prompt without a key pressed: no pager waits for "q"
    before = ticks(tick_file)
    sh.wait(lambda: ticks(tick_file) > before + 20, "the ticker to go on ticking")
    assert "(END)" not in sh.text and "lines 1-" not in sh.text
    sh.type("\x04")
    assert sh.exit_status() == 0


def test_partial_lines_of_a_bean_all_appear_above_the_prompt(shell: Callable[..., Screen]) -> None:
    sh = shell("beans.dots")
    sh.wait_prompt()
    sh.wait_text("..........|end", timeout=30)
    sh.wait_prompt()
    lines = sh.text.splitlines()
    dots = next(i for i, line in enumerate(lines) if "|end" in line)
    assert lines[dots] == "..........|end"
    assert lines[dots + 1].startswith(">>>")  # above the prompt, the prompt below it intact
    sh.type("\x04")
    assert sh.exit_status() == 0


def test_completion_while_typing_offers_the_pods_attributes(shell: Callable[..., Screen]) -> None:
    sh = shell()
    sh.wait_prompt()
    sh.type("pod.ad")  # no Tab: the menu comes while typing
    # The menu may reach the terminal in more than one read: wait for both of its entries.
    sh.wait(
        lambda: re.search(r"add_bean\(\)", sh.text) and "add_signal_handler()" in sh.text,
        "a completion menu with add_bean() and add_signal_handler()",
    )
    sh.type("\t")  # Tab takes the first one
    sh.wait(lambda: sh.screen.display[sh.screen.cursor.y].startswith(">>> pod.add_bean"), "pod.add_bean typed")
    sh.type("\x15\x04")  # Ctrl-U clears the line, Ctrl-D leaves
    assert sh.exit_status() == 0


def test_a_tab_inside_a_call_is_answered_by_jedi(shell: Callable[..., Screen]) -> None:
    sh = shell()
    sh.wait_prompt()
    sh.type("pod.add_bean(")  # nothing to offer while typing here
    sh.wait(lambda: sh.cursor_line.startswith(">>> pod.add_bean("), "the call typed")
    sh.type("\t")  # the namespace leaves a Tab inside a call to jedi (in a worker thread): the parameters
    sh.wait(lambda: re.search(r"^ +label=", sh.text, re.M), "jedi's parameter label= in the menu", timeout=60)
    sh.type("\x15\x04")
    assert sh.exit_status() == 0


def test_completion_offers_bean_labels(shell: Callable[..., Screen], tmp_path: Path) -> None:
    sh = shell()
    sh.wait_prompt()
    sh.type(f"b = add('beans.ticker', label='alpha' + 'bet', path={str(tmp_path / 't.txt')!r}); print('add' + 'ed')\r")
    sh.wait_text("added")
    sh.wait_prompt()
    sh.type("where('alp")
    sh.wait(lambda: re.search(r"^ +alphabet", sh.text, re.M), "the label in the completion menu")
    sh.type("\t")
    sh.wait(lambda: sh.cursor_line.startswith(">>> where('alphabet'"), "the label completed, with its quote")
    sh.type(")\r")
    sh.wait_text("in ticker")  # where() shows the bean's stack
    sh.wait_prompt()
    sh.type("\x04")
    assert sh.exit_status() == 0


def _write_ptpython_config(tmp_path: Path) -> Path:
    config = tmp_path / "config" / "ptpython" / "config.py"
    config.parent.mkdir(parents=True)
    config.write_text(VI_AND_STATUS_BAR)
    return config


def test_the_persons_ptpython_config_is_honoured(shell: Callable[..., Screen], tmp_path: Path) -> None:
    _write_ptpython_config(tmp_path)
    sh = shell()
    sh.wait_prompt()
    sh.wait_text("[F4] Vi (INSERT)")  # the status bar, in vi mode
    sh.type("abc = 4" + "5\x1b")  # Esc: vi's navigation mode
    sh.wait_text("Vi (NAV)")
    sh.type("0x")  # vi keys: to the start of the line, delete a character
    sh.wait(lambda: sh.cursor_line.startswith(">>> bc = 45"), "the line to read 'bc = 45'")
    sh.type("\r")
    sh.wait_text("Vi (INSERT)")
    sh.type("bc + " + "1\r")
    sh.wait(lambda: re.search(r"^46$", sh.text, re.M), "46")
    sh.type("\x04")
    assert sh.exit_status() == 0


def test_no_ptpython_config_ignores_it_and_keeps_the_classic_prompt(
    shell: Callable[..., Screen], tmp_path: Path
) -> None:
    _write_ptpython_config(tmp_path)
    sh = shell("--no-ptpython-config")
    sh.wait_prompt()
    sh.type("'clas' + 'sic'\r")
    sh.wait_text("'classic'")
    sh.wait_prompt()
    assert "[F4]" not in sh.text and "Vi (" not in sh.text
    assert sh.cursor_line == ">>>"
    sh.type("\x04")
    assert sh.exit_status() == 0


def test_an_explicit_ptpython_config_is_used(shell: Callable[..., Screen], tmp_path: Path) -> None:
    other = tmp_path / "mine.py"
    other.write_text(VI_AND_STATUS_BAR)
    sh = shell("--ptpython-config", str(other))
    sh.wait_prompt()
    sh.wait_text("[F4] Vi (INSERT)")
    sh.type("\x04")
    assert sh.exit_status() == 0


def test_a_missing_ptpython_config_is_a_usage_error(tmp_path: Path) -> None:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "aiopod", "shell", "--ptpython-config", str(tmp_path / "nope.py")],
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=30,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert "nope.py" in (child.before or "") and "does not exist" in (child.before or "")


def test_a_broken_ptpython_config_is_reported_and_the_console_starts(
    shell: Callable[..., Screen], tmp_path: Path
) -> None:
    config = _write_ptpython_config(tmp_path)
    config.write_text("def configure(repl):\n    repl.no_such_option_here()\n")
    sh = shell()
    sh.wait_text("no_such_option_here")
    sh.wait_prompt()
    sh.type("'star' + 'ted'\r")
    sh.wait_text("'started'")
    sh.type("\x04")
    assert sh.exit_status() == 0
