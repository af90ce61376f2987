"""``aiopod run -c examples/contrib_tcp_server.py``, then ``telnet 127.0.0.1 9399`` (or 9400).

Two tcp servers: a tcp_server.Server subclass on AIOPOD_PORT, an asyncio.Protocol on AIOPOD_PROTOCOL_PORT.
"""

import os

STOP_WAIT_TIME = 3

BEANS = [
    {
        "core": "aiopod.contrib.tcp_server.TCPServerAdapter",
        "label": "echo",
        "port": int(os.environ.get("AIOPOD_PORT", "9399")),
        "server": "contrib_servers.EchoServer",
    },
    {
        "core": "aiopod.contrib.tcp_server.TCPServerAdapter",
        "label": "echo-protocol",
        "port": int(os.environ.get("AIOPOD_PROTOCOL_PORT", "9400")),
        "protocol": "contrib_servers.EchoProtocol",
    },
]
