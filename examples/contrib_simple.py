"""``aiopod run -c examples/contrib_simple.py``: a simple.Server; Ctrl-C runs on_stop, then cleanup."""

BEANS = [{"core": "contrib_servers.Clock", "label": "clock", "interval": 0.2}]
