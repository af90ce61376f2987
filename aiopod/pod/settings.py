"""The pod's reserved settings: their defaults, and how each is read from a file, the environment
or an option (one parser per setting, whichever door it came in by)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal

from .errors import ConfigError

LoopType = Literal["asyncio", "uvloop", "auto"]
LOOP_TYPES: tuple[LoopType, ...] = ("asyncio", "uvloop", "auto")
RESERVED = ("BEANS", "LOG_LEVEL", "LOOP_TYPE", "DEBUG", "STOP_WAIT_TIME", "BEAN_HISTORY", "WATCHDOG")
DEFAULTS: dict[str, Any] = {
    "LOG_LEVEL": "INFO",
    "LOOP_TYPE": "auto",  # uvloop when installed: what the seed ran by default
    "DEBUG": False,
    "STOP_WAIT_TIME": 5.0,
    "BEAN_HISTORY": 1000,  # ended beans kept for ps() and lookups (aiopod.pod.registry)
    "WATCHDOG": True,  # the loop monitor (aiopod.pod.health)
}
#: The settings ``load()`` can change in a running pod; the others need a new process.
LIVE_SETTINGS = ("STOP_WAIT_TIME", "LOG_LEVEL", "DEBUG")
ENV_PREFIX = "AIOPOD_"
#: The seed's prefix, read where no ``AIOPOD_`` variable sets the same key.
SEED_ENV_PREFIX = "OS_AIO_POD_"
#: The longest STOP_WAIT_TIME (about 31 years): beyond it the clocks overflow, so longer
#: waits must say None (or inf), which mean "for ever".
MAX_STOP_WAIT_TIME = 1e9
#: Where a setting came from, weakest first (the precedence of ``load``).
FROM_DEFAULT, FROM_FILE, FROM_ENV, FROM_OPTION = range(4)


def is_config_name(name: str) -> bool:
    """Public UPPER_CASE names are config; ``_PRIVATE`` and lower-case names are not."""
    return not name.startswith("_") and name.isupper()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_stop_wait_time(value: Any) -> float | None:
    """STOP_WAIT_TIME from a file, the environment or an option: seconds, or None for "for ever".

    Accepts numbers from 0 to ``MAX_STOP_WAIT_TIME``, ``None``/``"none"``, and ``inf`` (for
    ever, as None). Raises ``ConfigError`` (without the source, which the caller adds).
    """
    if value is None:
        return None
    raw = value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in {"none", ""}:
            return None
        try:
            value = float(text)
        except ValueError:
            value = None
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"STOP_WAIT_TIME {_short(raw)} is not a number of seconds >= 0 (or None to wait for ever)")
    try:
        seconds = float(value)
    except OverflowError:  # an int such as 10**400
        seconds = math.inf if value > 0 else -math.inf
        if seconds > 0:
            raise ConfigError(
                f"STOP_WAIT_TIME {_short(raw)} is too large (at most {MAX_STOP_WAIT_TIME:g} s); "
                "use None to wait for ever"
            ) from None
    if math.isnan(seconds) or seconds < 0:
        raise ConfigError(f"STOP_WAIT_TIME {_short(raw)} is not a number of seconds >= 0 (or None to wait for ever)")
    if math.isinf(seconds):
        return None
    if seconds > MAX_STOP_WAIT_TIME:
        raise ConfigError(
            f"STOP_WAIT_TIME {_short(raw)} is too large (at most {MAX_STOP_WAIT_TIME:g} s); use None to wait for ever"
        )
    return seconds


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_env(key: str, raw: str, name: str) -> Any:
    if key in ("DEBUG", "WATCHDOG"):
        if raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise ConfigError(f"{name}={raw!r}: use 1/0, true/false, yes/no or on/off")
    return raw


#: ``AIOPOD_*`` variables that are secrets, read by their one user and never made config keys,
#: which every bean and console session can read (``--telnet`` reads the telnet password).
SECRET_ENV = frozenset({"TELNET_PASSWORD"})


def env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """``AIOPOD_<KEY>`` (else the seed's ``OS_AIO_POD_<KEY>``) variables as config keys.

    Returns ``(values, variable name per key, notices)``; reserved keys are parsed, the
    others kept as strings. Reading a seed variable gives one deprecation notice.
    """
    found: dict[str, Any] = {}
    names: dict[str, str] = {}
    problems: list[str] = []
    seed_used: list[str] = []
    seed_shadowed: list[str] = []
    for prefix in (SEED_ENV_PREFIX, ENV_PREFIX):  # AIOPOD_ comes last: it wins
        for name, raw in environ.items():
            key = name[len(prefix) :]
            if not name.startswith(prefix) or not is_config_name(key) or key in SECRET_ENV:
                continue
            if prefix == SEED_ENV_PREFIX:
                seed_used.append(name)
            elif key in names:
                seed_shadowed.append(f"{names[key]} is ignored: {name} is set")
            if key == "BEANS":
                problems.append(f"{name}: BEANS cannot come from the environment; put it in the config file")
                continue
            try:
                found[key] = _parse_env(key, raw, name)
            except ConfigError as exc:
                problems += exc.problems
                continue
            names[key] = name
    if problems:
        raise ConfigError(problems)
    notices = []
    if seed_used:
        renamed = ", ".join(ENV_PREFIX + n[len(SEED_ENV_PREFIX) :] for n in seed_used)
        line = f"{', '.join(seed_used)}: OS_AIO_POD_* variables are deprecated; rename them {renamed}"
        notices.append(line + "".join(f"; {s}" for s in seed_shadowed))
    return found, names, notices


def check_settings(data: MutableMapping[str, Any], source: Mapping[str, str]) -> list[str]:
    """Validate and normalise the reserved keys in ``data`` in place; return the problems found."""
    problems = []
    if "LOG_LEVEL" in data:
        level = data["LOG_LEVEL"]
        if isinstance(level, str) and level.strip().upper() in logging.getLevelNamesMapping():
            data["LOG_LEVEL"] = level.strip().upper()
        elif not (isinstance(level, int) and not isinstance(level, bool)):
            problems.append(
                f"{source['LOG_LEVEL']}: LOG_LEVEL {_short(level)} is not a level; "
                "use DEBUG, INFO, WARNING, ERROR or CRITICAL"
            )
    if "LOOP_TYPE" in data:
        loop_type = data["LOOP_TYPE"]
        if isinstance(loop_type, str) and loop_type.strip().lower() in LOOP_TYPES:
            data["LOOP_TYPE"] = loop_type.strip().lower()
        else:
            problems.append(f"{source['LOOP_TYPE']}: LOOP_TYPE {_short(loop_type)} is not one of asyncio, uvloop, auto")
    if "STOP_WAIT_TIME" in data:
        try:
            data["STOP_WAIT_TIME"] = parse_stop_wait_time(data["STOP_WAIT_TIME"])
        except ConfigError as exc:
            problems += [f"{source['STOP_WAIT_TIME']}: {p}" for p in exc.problems]
    for key in ("DEBUG", "WATCHDOG"):
        if key in data and not isinstance(data[key], bool):
            problems.append(f"{source[key]}: {key} {_short(data[key])} must be True or False")
    if "BEAN_HISTORY" in data:
        history = data["BEAN_HISTORY"]
        if isinstance(history, str) and history.strip().isdigit():
            history = data["BEAN_HISTORY"] = int(history)
        if isinstance(history, bool) or not isinstance(history, int) or history < 0:
            problems.append(
                f"{source['BEAN_HISTORY']}: BEAN_HISTORY {_short(history)} must be a whole number >= 0 "
                "(how many ended beans to keep)"
            )
    return problems
