"""``aiopod run -c examples/contrib_uvicorn.py``, then ``curl 127.0.0.1:8000/beans``."""

import os

STOP_WAIT_TIME = 3

BEANS = [
    {
        "core": "aiopod.contrib.uvicorn.UvicornAdapter",
        "label": "web",
        "app": "contrib_asgi_app:app",
        "port": int(os.environ.get("AIOPOD_PORT", "8000")),
        "access_log": False,
    },
    {"core": "contrib_servers.Clock", "label": "clock", "interval": 0.5},
]
