"""An aiohttp application factory for ``contrib_aiohttp.py``."""

from aiohttp import web

from aiopod.contrib.aiohttp import AIO_POD_CONTEXT


async def hello(request):
    return web.Response(text="hello")


async def beans(request):
    context = request.app[AIO_POD_CONTEXT]  # the WebAdapter bean's context
    return web.json_response({"beans": len(context.pod.beans), "label": context.label})


async def on_cleanup(app):
    print("app: cleanup", flush=True)


def make_app():
    app = web.Application()
    app.add_routes([web.get("/", hello), web.get("/beans", beans)])
    app.on_cleanup.append(on_cleanup)
    return app
