"""``aiopod run -c examples/contrib_aiohttp.py``, then ``curl 127.0.0.1:8080/beans``."""

import os

STOP_WAIT_TIME = 3

BEANS = [
    {
        "core": "aiopod.contrib.aiohttp.WebAdapter",
        "label": "web",
        "app": "contrib_aiohttp_app:make_app",
        "port": int(os.environ.get("AIOPOD_PORT", "8080")),
        "access_log": False,
    },
    {"core": "contrib_servers.Clock", "label": "clock", "interval": 0.5},
]
