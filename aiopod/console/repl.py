"""ptpython's REPL, awaited on the pod's own loop: no input thread, no signal juggling."""

from __future__ import annotations

import asyncio
import traceback
from typing import Any

from prompt_toolkit.document import Document
from ptpython.completer import PythonCompleter
from ptpython.repl import PythonRepl, ReplExit

from ..pod import AiopodError, Pod
from .completion import BeanLabelCompleter
from .namespace import build_namespace, settle


class PodRepl(PythonRepl):
    """A ptpython REPL whose prompt runs as a coroutine on the pod's loop.

    ptpython's own ``run_async`` reads input in an executor thread and swaps the loop's
    SIGINT handler around every statement; this one reads on the loop (completion
    stays in a worker thread) and leaves process signals to the pod, which hands a
    SIGINT to :meth:`interrupt` while a statement runs.
    """

    def __init__(self, pod: Pod, *args: Any, **kwargs: Any) -> None:
        self.pod = pod
        self.namespace = build_namespace(pod, self._leave)
        kwargs.setdefault("get_globals", lambda: self.namespace)
        super().__init__(*args, **kwargs)
        self.completer = BeanLabelCompleter(pod, PythonCompleter(self.get_globals, self.get_locals, lambda: False))
        # Completing while typing runs jedi on every key press; on the pod's loop that
        # showed up as 250-490 ms gaps for the beans. Tab still completes.
        self.complete_while_typing = False
        self.confirm_exit = False
        self.prompt_style = "classic"
        self.show_status_bar = False
        self.show_signature = False
        self.show_docstring = False
        self.enable_pager = False
        self.title = "aiopod"
        self._statement: asyncio.Task[Any] | None = None

    @staticmethod
    def _leave() -> None:
        raise ReplExit

    def interrupt(self) -> bool:
        """Cancel the running statement, if any (called from the SIGINT handler)."""
        task = self._statement
        if task is None or task.done():
            return False
        task.get_loop().call_soon_threadsafe(task.cancel)
        return True

    async def read_async(self) -> str:
        """Read one statement with the prompt running on this loop; EOFError on Ctrl-D."""
        while True:
            try:
                text: str = await self.app.run_async(set_exception_handler=False, handle_sigint=False)
            except KeyboardInterrupt:  # Ctrl-C at the prompt clears the line
                self.signatures = []
                self.default_buffer.document = Document()
                continue
            if text.lstrip().startswith("\x1a"):
                raise EOFError
            if text and not text.isspace():
                return text

    async def run_async(self) -> None:
        """Read, evaluate, print until ``exit()``, ``stop()`` or Ctrl-D."""
        self._add_to_namespace()
        try:
            while True:
                try:
                    text = await self.read_async()
                except EOFError:
                    return
                if not await self.run_statement(text):
                    return
        finally:
            self._remove_from_namespace()

    async def run_statement(self, text: str) -> bool:
        """Run one statement as a task; returns False when the console should end."""
        self._statement = asyncio.create_task(self._evaluate(text))
        try:
            result = await self._statement
        except ReplExit:
            return False
        except SystemExit:
            return False
        except asyncio.CancelledError:
            if _current_task_cancelling():  # the console itself is being stopped
                raise
            self.app.output.write("\rKeyboardInterrupt (the statement was cancelled; the pod runs on)\n")
            self.app.output.flush()
            return True
        except Exception as exc:
            self._handle_exception(exc)
            return True
        finally:
            self._statement = None
        if result is not None:
            self._show_result(result)
        self.current_statement_index += 1
        self.signatures = []
        return True

    async def _evaluate(self, text: str) -> Any:
        result = await settle(await self.eval_async(text))
        if result is not None:
            self._store_eval_result(result)
        return result

    def _handle_exception(self, e: BaseException) -> None:
        if isinstance(e, AiopodError):  # a mistake at the prompt: the message says it all
            self.app.output.write(f"{type(e).__name__}: {e}\n")
            self.app.output.flush()
            return
        try:
            super()._handle_exception(e)
        except Exception:  # the printer itself failed: still show something
            self.app.output.write("".join(traceback.format_exception(e)))


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
