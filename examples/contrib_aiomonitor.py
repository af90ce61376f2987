"""``aiopod run -c examples/contrib_aiomonitor.py``, then ``telnet 127.0.0.1 20101`` and type ``ps``."""

import os

STOP_WAIT_TIME = 3

BEANS = [
    {
        "core": "aiopod.contrib.aiomonitor.AioMonitorAdapter",
        "label": "monitor",
        "port": int(os.environ.get("AIOPOD_MONITOR_PORT", "20101")),
        "webui_port": int(os.environ.get("AIOPOD_MONITOR_WEBUI_PORT", "20102")),
        "console_port": int(os.environ.get("AIOPOD_MONITOR_CONSOLE_PORT", "20103")),
        "greeting": "hello from the pod",  # a name in the monitor's Python console
    },
    {"core": "contrib_servers.Clock", "label": "clock", "interval": 0.5},
]
