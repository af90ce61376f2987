"""The demo pod: ``aiopod shell -c examples/demo.py``, then try ps(), h(), where('counter')."""

STOP_WAIT_TIME = 2
WELCOME = "try: await signal('greet', 'greeter', who='you')"

BEANS = [
    {"core": "demo_beans.Counter", "label": "counter", "interval": 0.1},
    {"core": "demo_beans.greeter", "greeting": "Hello"},
    {
        "core": "demo_beans.flaky",
        "label": "flaky",
        "restart": {"policy": "on-failure", "max": 100, "window": 60, "backoff": 0.5},
        "failure_rate": 0.3,
    },
]
