from __future__ import annotations

from typing import Any

import pytest

from aiopod.pod import BeanState, ConfigError, Pod, RestartBudget, RestartPolicy
from aiopod.pod.supervision import MAX_BACKOFF, parse_restart

from .helpers import arun


async def noop() -> None:
    pass


@pytest.mark.parametrize("value", [None, "no", {"policy": "no"}, {"policy": "no", "max": 3}])
def test_parse_restart_no_policy(value: Any) -> None:
    assert parse_restart(value) is None


def test_parse_restart_names() -> None:
    assert parse_restart("on-failure") == RestartPolicy("on-failure", 5, 60.0, 0.1)
    assert parse_restart("always") == RestartPolicy("always", 5, 60.0, 0.1)


def test_parse_restart_dict() -> None:
    policy = parse_restart({"policy": "always", "max": 2, "window": 10, "backoff": 0.5})
    assert policy == RestartPolicy("always", 2, 10.0, 0.5)
    assert isinstance(policy.window, float) and isinstance(policy.backoff, float)
    assert parse_restart({"max": 1}) == RestartPolicy("on-failure", 1, 60.0, 0.1)  # policy defaults to on-failure


@pytest.mark.parametrize(
    ("value", "problems"),
    [
        ("sometimes", ["policy 'sometimes' is not one of 'no', 'on-failure', 'always'"]),
        (3, ["3 is not a policy; use 'no', 'on-failure', 'always' or a dict"]),
        (True, ["True is not a policy; use 'no', 'on-failure', 'always' or a dict"]),
        ({"max": -1}, ["max -1 must be a number >= 0"]),
        ({"max": 1.5}, ["max 1.5 must be a whole number of restarts"]),
        ({"max": True}, ["max True must be a number >= 0"]),
        ({"window": "1m"}, ["window '1m' must be a number >= 0"]),
        ({"backoff": -0.1}, ["backoff -0.1 must be a number >= 0"]),
        ({"retries": 3}, ["unknown keys ['retries']; allowed: policy, max, window, backoff"]),
        (
            {"policy": "often", "max": "5", "delay": 1},
            [
                "unknown keys ['delay']; allowed: policy, max, window, backoff",
                "policy 'often' is not one of 'no', 'on-failure', 'always'",
                "max '5' must be a number >= 0",
            ],
        ),
    ],
)
def test_parse_restart_rejects_bad_values_listing_every_problem(value: Any, problems: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_restart(value)
    assert info.value.problems == problems


def test_wants() -> None:
    assert RestartPolicy("on-failure").wants(failed=True)
    assert not RestartPolicy("on-failure").wants(failed=False)
    assert RestartPolicy("always").wants(failed=True)
    assert RestartPolicy("always").wants(failed=False)
    assert not RestartPolicy("no").wants(failed=True)


def test_next_delay_doubles_until_the_budget_is_spent() -> None:
    policy = RestartBudget(RestartPolicy("on-failure", max=3, window=60, backoff=0.5))
    assert [policy.next_delay(now=t) for t in (0, 1, 2)] == [0.5, 1.0, 2.0]
    assert policy.next_delay(now=3) is None
    assert policy.next_delay(now=59) is None
    assert len(policy.history) == 3


def test_next_delay_budget_is_per_window() -> None:
    policy = RestartBudget(RestartPolicy("on-failure", max=2, window=10, backoff=1))
    assert policy.next_delay(now=0) == 1.0
    assert policy.next_delay(now=5) == 2.0
    assert policy.next_delay(now=9) is None
    assert policy.next_delay(now=10.5) == 2.0  # the restart at 0 left the window; the one at 5 is still in it
    assert policy.next_delay(now=12) is None
    assert policy.next_delay(now=100) == 1.0  # a quiet spell resets the backoff too


def test_next_delay_is_capped() -> None:
    policy = RestartBudget(RestartPolicy("always", max=20, window=1000, backoff=1))
    delays = [policy.next_delay(now=float(t)) for t in range(10)]
    assert delays[:6] == [1, 2, 4, 8, 16, MAX_BACKOFF]
    assert set(delays[5:]) == {MAX_BACKOFF}


def test_max_zero_never_restarts() -> None:
    assert RestartBudget(RestartPolicy("always", max=0)).next_delay(now=0) is None


def test_zero_backoff_restarts_at_once() -> None:
    policy = RestartBudget(RestartPolicy("on-failure", max=3, backoff=0))
    assert [policy.next_delay(now=t) for t in (0, 0, 0, 0)] == [0.0, 0.0, 0.0, None]


def test_beans_from_one_policy_keep_separate_budgets() -> None:
    """A policy is settings only (shared, frozen); each bean's restarts are counted apart."""
    flaky_runs: dict[str, int] = {"a": 0, "b": 0}

    async def flaky(name: str) -> None:
        flaky_runs[name] += 1
        raise RuntimeError(name)

    pod = Pod()
    policy = {"policy": "on-failure", "max": 1, "backoff": 0}
    first = pod.add_bean(flaky, name="a", restart=policy)
    second = pod.add_bean(flaky, name="b", restart=policy)
    assert first.restart == second.restart == parse_restart(policy)
    assert arun(pod.run()) == 1
    # each one: the first run, one restart, then its own budget is spent
    assert flaky_runs == {"a": 2, "b": 2}
    assert [b.restarts for b in pod.beans] == [1, 1]
    assert all(b.state is BeanState.FAILED for b in pod.beans)


def test_add_bean_rejects_a_bad_restart() -> None:
    pod = Pod()
    with pytest.raises(ConfigError, match="policy 'sometimes'"):
        pod.add_bean(noop, restart="sometimes")
    assert pod.beans == []
