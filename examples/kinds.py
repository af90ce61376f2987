"""All four bean kinds in one config: ``aiopod run -c examples/kinds.py`` (Ctrl-C to stop)."""

GREETING = "Hello"  # UPPER_CASE names are config: context.config.GREETING
STOP_WAIT_TIME = 3

BEANS = [
    {"core": "beans:hello", "label": "coroutine-object"},
    {"core": "beans.hello_world", "label": "function", "answer": 42},
    {"core": "beans.Ticker", "label": "ticker", "interval": 0.5},
    {"core": "beans.greeter", "name": "Ozzy"},
]
