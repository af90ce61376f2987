"""A tiny ASGI app (no framework) for ``contrib_uvicorn.py`` and the uvicorn benchmark."""

import json


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                print("app: lifespan shutdown", flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/beans":  # the bean's context reaches the app as app.aio_pod_context
        context = app.aio_pod_context
        body = json.dumps({"beans": len(context.pod.beans), "label": context.label}).encode()
        content_type = b"application/json"
    else:
        body, content_type = b"hello", b"text/plain"
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
