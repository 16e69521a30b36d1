"""A small TCP proxy on 127.0.0.1 that misbehaves on purpose: latency on every chunk,
dropped connections, and a blackhole (bytes held, nothing forwarded, as when the
network loses packets and TCP retransmits them once it heals).

It runs on its own event loop in a daemon thread, so that nothing the test does on
its own loop (a blocking wait, a slow check) delays the traffic it forwards."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass


@dataclass
class ProxyStats:
    connections: int = 0   # accepted from clients
    dropped: int = 0       # connections cut by `drop()`
    reconnects: int = 0    # connections accepted after the first drop or blackhole: clients coming back
    latency_episodes: int = 0
    drops: int = 0
    blackholes: int = 0


class Proxy:
    def __init__(self, target_port: int, listen_port: int, name: str = "proxy"):
        self.target_port, self.port, self.name = target_port, listen_port, name
        self.stats = ProxyStats()
        self.latency_s = 0.0
        self._flowing: asyncio.Event | None = None  # created on the proxy's own loop
        self._writers: set[asyncio.StreamWriter] = set()
        self._faulted = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"proxy-{name}", daemon=True)
        self._server: asyncio.AbstractServer | None = None

    # --- control, from any thread ---
    def start(self) -> "Proxy":
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def set_latency(self, seconds: float) -> None:
        if seconds:
            self.stats.latency_episodes += 1
        self.latency_s = seconds

    def drop(self) -> int:
        """Cut every open connection (reset); new ones are accepted as before."""
        self.stats.drops += 1
        return self._call(self._drop())

    def blackhole(self, seconds: float) -> None:
        """Forward nothing for `seconds` (connections stay open, bytes are held, new
        connections are accepted but hear nothing), then let everything through again."""
        self.stats.blackholes += 1
        self._call(self._blackhole(seconds), timeout=seconds + 10)

    def _call(self, coro, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # --- on the proxy's loop ---
    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server:
            self._server.close()
        await self._drop(count=False)

    async def _drop(self, count: bool = True) -> int:
        writers, self._writers = list(self._writers), set()
        for writer in writers:
            transport = writer.transport
            if transport is not None and not transport.is_closing():
                transport.abort()  # RST, as a dying middlebox would
        if count:
            self.stats.dropped += len(writers)
            self._faulted = True
        return len(writers)

    async def _blackhole(self, seconds: float) -> None:
        self._faulted = True
        self._flowing.clear()
        await asyncio.sleep(seconds)
        self._flowing.set()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        if self._faulted:
            self.stats.reconnects += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer),
                             return_exceptions=True)
        for w in (writer, up_writer):
            self._writers.discard(w)
            if not w.transport.is_closing():
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                await self._flowing.wait()
                if self.latency_s:
                    await asyncio.sleep(self.latency_s)
                await self._flowing.wait()
                if writer.transport.is_closing():
                    break
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # One side closed or was cut: cut the other too, so no half-open pair lingers.
            if not writer.transport.is_closing():
                writer.transport.abort()

