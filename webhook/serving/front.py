"""The front end: connections and request I/O on one event loop, answers by their route.

gunicorn's gthread worker reads TLS handshakes, headers and bodies inside
the threads that run the app, with no deadline: sixteen clients that connect
and send nothing stop every admission. Here one asyncio loop per worker
process does all the waiting on clients, each phase with its own timeout
(handshake, headers, body, idle keep-alive, writes) and a bound on open
connections; a request reaches the app's threads only once it is complete.

Each complete request is answered by the route its `Routes` give it
(webhook.serving.routes; the webhook's table is webhook.serving.dispatch):
on the loop when the route can answer without waiting (probes, a review the
caches decide at once), else in an admission thread (webhook.serving.pool).
A review that finds every thread busy and cannot start within its deadline
gets the route's `overloaded` answer at the deadline instead of waiting on,
so the API server is never the one that times out. A body over the limit is
read away (up to DISCARD_FACTOR times the limit) and refused here with a 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import socket
import ssl
import time
from asyncio import sslproto
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from webhook import metrics
from webhook.serving.bounds import BodyBudget, Room
from webhook.serving.httpwire import (
    BadRequest,
    Head,
    head_end,
    json_error,
    parse_head,
    response,
    status_line,
)
from webhook.serving.pool import AppPool
from webhook.serving.routes import ADMIN, ADMISSION, HttpReply, Request, Routes
from webhook.serving.seats import GRACE_SECONDS, Seat

log = logging.getLogger(__name__)
JSON = [("Content-Type", "application/json")]

DISCARD_FACTOR = 4  # an oversized body is read away up to this many times the limit
TICK_SECONDS = 0.5
READ_BYTES = 65536
# asyncio's TLS protocol gives every connection a 256 KiB read buffer (SSLProtocol.max_size),
# zero-filled, so resident: 1,024 idle connections cost a worker 284 MiB. An Argo pod's review
# is 12-17 KB, so 32 KiB still reads one in a single go (16 KiB took two reads and measured
# slower with 2 workers) and an idle connection costs 60 KiB (docs/serving.md).
TLS_READ_BYTES = 32 * 1024


@dataclass(frozen=True)
class Limits:
    """How long a client may take over each phase, and how many may be connected."""

    handshake_seconds: float = 5.0
    header_seconds: float = 5.0  # from the first byte of a request to the end of its head
    body_seconds: float = 10.0
    idle_seconds: float = 60.0  # a keep-alive connection between requests
    write_seconds: float = 10.0
    # Per worker process and port; at the bound the longest-idle connection makes room,
    # and if none idles, more wait in the kernel's backlog (webhook.serving.bounds.Room).
    max_connections: int = 1024  # the admission port
    admin_max_connections: int = 64  # the admin port (status page, metrics)
    max_head_bytes: int = 65536
    max_body_bytes: int = 6 * 1024 * 1024
    body_bytes_in_flight: int = 32 * 1024 * 1024  # per worker (webhook.serving.bounds.BodyBudget)


async def _readable(listener: socket.socket) -> None:
    """Until a connection is pending on `listener` (nothing is accepted)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(listener, wake)
    try:
        await ready
    finally:
        loop.remove_reader(listener)


def _pending(listener: socket.socket) -> bool:
    readable, _, _ = select.select([listener], [], [], 0)
    return bool(readable)


class Front:
    """Serves the listening sockets of one worker process until `alive()` turns false."""

    def __init__(
        self,
        routes: Routes,
        listeners: Sequence[socket.socket],
        tls: Callable[[], ssl.SSLContext],
        webhook_port: int,
        threads: int,
        limits: Limits = Limits(),
        seat: Seat | None = None,
    ) -> None:
        """`seat`: this worker's place among the others sharing the listeners (serving.seats)."""
        self.routes = routes
        self.seat = seat
        self.listeners = list(listeners)
        self.tls = tls
        self.webhook_port = webhook_port
        self.limits = limits
        self.pool = AppPool(threads)
        self.stopping = False
        self._rooms: dict[int, Room] = {}  # by listening port, made on the loop
        self._budget: BodyBudget | None = None

    @property
    def open_connections(self) -> int:
        return sum(len(room.open) for room in self._rooms.values())

    def _bound_of(self, port: int) -> int:
        if port == self.webhook_port:
            return self.limits.max_connections
        return self.limits.admin_max_connections

    async def serve(
        self,
        alive: Callable[[], bool],
        heartbeat: Callable[[], None] = lambda: None,
        graceful_seconds: float = 25.0,
    ) -> None:
        sslproto.SSLProtocol.max_size = TLS_READ_BYTES  # for every connection of this process
        self._budget = BodyBudget(self.limits.body_bytes_in_flight)
        for sock in self.listeners:
            port = sock.getsockname()[1]
            self._rooms[port] = Room(self._bound_of(port))
        accepting = [asyncio.create_task(self._accept(sock)) for sock in self.listeners]
        try:
            while alive():
                heartbeat()
                await asyncio.sleep(TICK_SECONDS)
        finally:
            self.stopping = True
            for task in accepting:
                task.cancel()
            await self._finish(graceful_seconds, heartbeat)
            self.pool.shutdown()

    async def _finish(self, graceful_seconds: float, heartbeat: Callable[[], None]) -> None:
        """Close idle connections; let requests in flight end, for `graceful_seconds` at most."""
        deadline = time.monotonic() + graceful_seconds
        while self._open() and time.monotonic() < deadline:
            for room in self._rooms.values():
                for task in list(room.idle):
                    task.cancel()
            heartbeat()
            await asyncio.wait(self._open(), timeout=TICK_SECONDS)
        for task in self._open():
            task.cancel()

    def _open(self) -> list[asyncio.Task[None]]:
        return [task for room in self._rooms.values() for task in room.open]

    async def _accept(self, listener: socket.socket) -> None:
        """Accept on `listener` until cancelled; no error ends it (the worker would look
        alive and never accept again)."""
        listener.setblocking(False)
        port = listener.getsockname()[1]
        while True:
            try:
                await self._accept_one(listener, port)
            except OSError:
                await asyncio.sleep(0.05)  # EMFILE and friends: do not spin
            except Exception:
                log.exception("accepting on port %s failed; accepting again", port)
                await asyncio.sleep(0.05)

    async def _accept_one(self, listener: socket.socket, port: int) -> None:
        loop = asyncio.get_running_loop()
        room = self._rooms[port]
        await room.make_room(
            partial(_readable, listener),
            metrics.child(metrics.CONNECTIONS_CLOSED_FOR_ROOM, _port_name(self, port)).inc,
        )
        if self.seat is not None:
            await self._balanced(listener, self.seat)
        sock, peer = await loop.sock_accept(listener)
        task = asyncio.create_task(self._serve_connection(sock, peer, room))
        room.entered(task)
        task.add_done_callback(partial(self._closed, room))
        if self.seat is not None:
            self.seat.publish(self.open_connections)

    async def _balanced(self, listener: socket.socket, seat: Seat) -> None:
        """Return when this worker should accept: it holds no more than the others, or a
        pending connection was left to them for GRACE_SECONDS and nobody took it.

        A failure here must not stop the accepting: it is logged, and the worker
        accepts as if it were alone.
        """
        try:
            while seat.crowded(self.open_connections):
                await _readable(listener)
                await asyncio.sleep(GRACE_SECONDS)
                if _pending(listener):
                    return
        except OSError:
            raise  # the listener's own trouble: the accept loop waits and tries again
        except Exception:
            log.exception("cannot compare connection counts with the other workers")

    def _closed(self, room: Room, task: asyncio.Task[None]) -> None:
        room.left(task)
        if self.seat is not None:
            self.seat.publish(self.open_connections)
        if not task.cancelled() and task.exception() is not None:
            log.warning("connection failed: %r", task.exception())

    async def _serve_connection(self, sock: socket.socket, peer: Any, room: Room) -> None:
        loop = asyncio.get_running_loop()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = asyncio.StreamReader(limit=self.limits.max_head_bytes)
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            async with asyncio.timeout(self.limits.handshake_seconds + 1):
                transport, _ = await loop.connect_accepted_socket(
                    lambda: protocol,
                    sock,
                    ssl=self.tls(),
                    ssl_handshake_timeout=self.limits.handshake_seconds,
                    ssl_shutdown_timeout=2.0,
                )
        except (OSError, ssl.SSLError, TimeoutError):
            sock.close()
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        task = asyncio.current_task()
        assert task is not None
        try:
            await self._requests(reader, writer, peer, sock.getsockname()[1], room, task)
        except (OSError, ssl.SSLError):
            pass  # the client went away
        finally:
            transport.close()

    async def _requests(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: Any,
        port: int,
        room: Room,
        task: asyncio.Task[None],
    ) -> None:
        limits = self.limits
        wait_first = limits.header_seconds  # a new connection must start its request promptly
        pending = bytearray()  # read past the last request: the start of the next (pipelining)
        while not self.stopping:
            try:
                if not pending:
                    room.resting(task)
                    async with asyncio.timeout(wait_first):
                        chunk = await reader.read(READ_BYTES)
                    if not chunk:
                        return
                    pending += chunk
                room.working(task)
                arrived = time.monotonic()
                async with asyncio.timeout(limits.header_seconds):
                    end = head_end(pending, limits.max_head_bytes)
                    while end < 0:
                        chunk = await reader.read(READ_BYTES)
                        if not chunk:
                            return
                        pending += chunk
                        end = head_end(pending, limits.max_head_bytes)
                head = parse_head(bytes(pending[:end]))
            except TimeoutError:
                return  # silent, or too slow with its headers: closed
            except BadRequest as err:
                await self._refuse(writer, err.status, str(err))
                return
            del pending[:end]
            answered = await self._exchange(reader, writer, head, pending, peer, port, arrived)
            if not answered:
                return
            wait_first = limits.idle_seconds

    async def _exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        head: Head,
        pending: bytearray,
        peer: Any,
        port: int,
        arrived: float,
    ) -> bool:
        """Read the body of `head`, answer it; False when the connection is to be closed."""
        limits = self.limits
        length = head.content_length
        held = length if length <= limits.max_body_bytes else 0
        admission = port == self.webhook_port
        if held:
            room_by = arrived + limits.body_seconds
            deadline = self.routes.deadline_seconds
            if admission and deadline and head.method == "POST":
                room_by = min(room_by, arrived + deadline)  # the API server must not time out
            assert self._budget is not None
            if not await self._budget.take(held, room_by - time.monotonic()):
                metrics.child(metrics.REQUESTS_REFUSED, "body-bytes-in-flight").inc()
                await self._refuse(writer, 503, "too many request bodies in flight; retry")
                return False
        try:
            body = await self._body(reader, writer, head, pending)
            if body is None:
                return False
            if length > limits.max_body_bytes:
                message = f"the body is larger than the limit of {limits.max_body_bytes} bytes"
                status, headers, payload = status_line(400), JSON, json_error(400, message)
            else:
                request = Request(self._listener(port), port, head, body, peer, arrived)
                status, headers, payload = await self._answer(request)
        finally:
            if held:
                assert self._budget is not None
                self._budget.give(held)
        # Over the limit, the body was read away, not kept: the connection ends with it.
        keep_alive = head.keep_alive and not self.stopping and length <= limits.max_body_bytes
        wire = response(status, headers, payload, keep_alive)
        if head.method == "HEAD":
            wire = wire[: len(wire) - len(payload)]  # the length, not the body
        writer.write(wire)
        async with asyncio.timeout(limits.write_seconds):
            await writer.drain()
        return keep_alive

    async def _body(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        head: Head,
        pending: bytearray,
    ) -> bytes | None:
        """The body (empty when over the limit: read away); None: too slow, connection closed.

        `pending` holds what was read past the head; what is left of it after the
        body stays there for the next request.
        """
        length = head.content_length
        limit = self.limits.max_body_bytes
        if length > limit * DISCARD_FACTOR:
            await self._refuse(writer, 400, f"the body is larger than the limit of {limit} bytes")
            return None
        if len(pending) >= length:
            body = bytes(pending[:length])
            del pending[:length]
            return body
        if head.expects_continue:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        start = bytes(pending)
        pending.clear()
        try:
            async with asyncio.timeout(self.limits.body_seconds):
                if length <= limit:
                    return start + await reader.readexactly(length - len(start))
                remaining = length - len(start)
                while remaining > 0:
                    chunk = await reader.read(min(remaining, READ_BYTES))
                    if not chunk:
                        return None
                    remaining -= len(chunk)
                return b""  # refused by its Content-Length alone
        except (TimeoutError, asyncio.IncompleteReadError):
            return None

    def _listener(self, port: int) -> str:
        return ADMISSION if port == self.webhook_port else ADMIN

    async def _answer(self, request: Request) -> HttpReply:
        """The reply its route gives: on the loop if it can, else in an admission thread."""
        route = self.routes.route(request)
        head = request.head
        deadline = self.routes.deadline_seconds
        waits_for_a_thread = request.listener == ADMISSION and head.method == "POST"
        expires = request.arrived + deadline if waits_for_a_thread and deadline else None
        try:
            if route.on_loop is not None:
                reply = route.on_loop(request, self.pool.saturated_for())
                if reply is not None:
                    return reply
            if route.in_thread is None:
                raise RuntimeError(f"the route of {head.method} {head.path} gave no answer")
            reply = await self.pool.run(partial(route.in_thread, request), expires)
            if reply is None:
                metrics.OVERLOADED.labels("deadline").inc()
                waited = time.monotonic() - request.arrived
                if route.overloaded is None:
                    return status_line(503), JSON, json_error(503, "every thread busy; retry")
                return route.overloaded(request, waited)
        except Exception:
            log.exception("the app failed on %s", head.path)
            return status_line(500), JSON, json_error(500, "")
        return reply

    async def _refuse(self, writer: asyncio.StreamWriter, code: int, why: str) -> None:
        writer.write(
            response(
                status_line(code),
                JSON,
                json_error(code, why),
                keep_alive=False,
            )
        )
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(self.limits.write_seconds):
                await writer.drain()


def _port_name(front: Front, port: int) -> str:
    return "admission" if port == front.webhook_port else "admin"
