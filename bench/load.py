"""A small HTTP/1.1 load generator on asyncio: keep-alive connections, pre-built
requests, latencies measured from each request's intended start (so a slow server
cannot hide its queueing: no coordinated omission)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0
    errors: int = 0
    server_cpu: float = 0.0  # seconds per request, when the caller measured it
    client_cpu: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Connection:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def send(self, raw: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(raw)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length, closing = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                closing = True
        if length:
            await self.reader.readexactly(length)
        if closing:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def build_request(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}",
             *(f"{name}: {value}" for name, value in headers.items()), "", ""]
    return "\r\n".join(lines).encode() + body


async def _closed_loop(host, port, requests: list[bytes], concurrency: int) -> Result:
    result = Result()
    pending = iter(requests)

    async def run_one_connection():
        connection = Connection(host, port)
        for raw in pending:
            started = time.perf_counter()
            try:
                status = await connection.send(raw)
            except (OSError, asyncio.IncompleteReadError):
                result.errors += 1
                connection.close()
                continue
            result.latencies.append(time.perf_counter() - started)
            result.statuses[status] = result.statuses.get(status, 0) + 1
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(run_one_connection() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    return result


async def _open_loop(host, port, requests: list[bytes], rate: float, warmup: int) -> Result:
    result = Result()
    idle: list[Connection] = []
    start = time.perf_counter() + 0.05

    async def fire(index: int, raw: bytes):
        intended = start + index / rate
        delay = intended - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        connection = idle.pop() if idle else Connection(host, port)
        try:
            status = await connection.send(raw)
        except (OSError, asyncio.IncompleteReadError):
            result.errors += 1
            connection.close()
            return
        if index >= warmup:
            result.latencies.append(time.perf_counter() - intended)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        idle.append(connection)

    await asyncio.gather(*(fire(i, raw) for i, raw in enumerate(requests)))
    result.elapsed = time.perf_counter() - start - warmup / rate
    for connection in idle:
        connection.close()
    return result


@contextlib.contextmanager
def no_collector_pauses():
    """The generator's own garbage collector, walking everything the benchmark process
    imported, would stop it for 50-70 ms at a time, and every request in flight would
    seem that much slower. A run is short: collect before it, not during it."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def closed_loop(host: str, port: int, requests: list[bytes], concurrency: int) -> Result:
    """As fast as the server answers, ``concurrency`` requests in flight."""
    with no_collector_pauses():
        return asyncio.run(_closed_loop(host, port, requests, concurrency))


def open_loop(host: str, port: int, requests: list[bytes], rate: float,
              warmup: int = 0) -> Result:
    """A fixed arrival rate, whatever the server does. The first ``warmup`` requests
    open the connections the rate needs and are answered but not timed."""
    with no_collector_pauses():
        return asyncio.run(_open_loop(host, port, requests, rate, warmup))
