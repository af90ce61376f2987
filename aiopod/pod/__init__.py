"""The aiopod runtime: pods, beans, contexts and signals (no console, no adapters)."""

from __future__ import annotations

from .bean import Bean, BeanState, Kind
from .config import BeanSpec, ChecksKwargs, Config, PodConfig, load, parse_bean_arg, read_config_file
from .context import BeanContext, pass_context
from .errors import AiopodError, AmbiguousBean, AttachError, BeanNotFound, BindError, ConfigError, PodStateError
from .pod import Pod
from .runner import run_pod
from .signals import HandlerResult, SignalResults
from .supervision import RestartBudget, RestartPolicy

__all__ = [
    "AiopodError",
    "AmbiguousBean",
    "AttachError",
    "Bean",
    "BeanContext",
    "BeanNotFound",
    "BeanSpec",
    "BeanState",
    "BindError",
    "ChecksKwargs",
    "Config",
    "ConfigError",
    "HandlerResult",
    "Kind",
    "Pod",
    "PodConfig",
    "PodStateError",
    "RestartBudget",
    "RestartPolicy",
    "SignalResults",
    "load",
    "parse_bean_arg",
    "pass_context",
    "read_config_file",
    "run_pod",
]
