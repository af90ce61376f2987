"""The seed's quick start: ``aiopod run example.helloworld:hi=Ozzy`` in this folder."""

import asyncio


async def helloworld(**kwargs):
    await asyncio.sleep(1)
    print("hello world!", kwargs)
