"""The front end: request I/O on one event loop, decisions in a pool of threads.

gunicorn's gthread worker reads TLS handshakes, headers and bodies inside
the threads that run the app, with no deadline: sixteen clients that connect
and send nothing stop every admission. Here one asyncio loop per worker
process does all the waiting on clients, each phase with its own timeout
(handshake, headers, body, idle keep-alive, writes) and a bound on open
connections; a request reaches the app's threads only once it is complete.

What no admission can occupy, the loop answers itself: the kubelet's probes
(`/healthz`, `/readyz` on the admission port). A review that finds every
app thread busy and cannot start within its deadline gets the failure
policy's answer at the deadline instead of waiting on, so the API server is
never the one that times out. A review the app's caches can decide at once
is decided on the loop too (`Hooks.inline`): no thread hand-off for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from asyncio import sslproto
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from webhook import metrics
from webhook.serving.bounds import BodyBudget, Room
from webhook.serving.httpwire import (
    BadRequest,
    Head,
    environ,
    head_end,
    json_error,
    parse_head,
    response,
    status_line,
)
from webhook.serving.seats import GRACE_SECONDS, Seat

log = logging.getLogger(__name__)

ARRIVED = "jetstream_pin.arrived"  # environ key: time.monotonic() when the head arrived
PROBES = frozenset({"/healthz", "/readyz"})
DISCARD_FACTOR = 4  # an oversized body is read away up to this many times the limit
TICK_SECONDS = 0.5
READ_BYTES = 65536
# asyncio's TLS protocol gives every connection a 256 KiB read buffer (SSLProtocol.max_size),
# zero-filled, so resident: 1,024 idle connections cost a worker 284 MiB. An Argo pod's review
# is 12-17 KB, so 32 KiB still reads one in a single go (16 KiB took two reads and measured
# slower with 2 workers) and an idle connection costs 60 KiB (docs/serving.md).
TLS_READ_BYTES = 32 * 1024

Answer = tuple[str, list[tuple[str, str]], bytes]
Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


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
    # A review with a larger body is decided in an admission thread, never on the loop.
    loop_review_max_bytes: int = 64 * 1024


class Hooks(Protocol):
    """What the app tells the front end: probes, the deadline, the answer when overloaded."""

    deadline_seconds: float | None

    def probe(self, path: str, saturated_for: float) -> tuple[int, bytes]: ...

    def overloaded(self, body: bytes, waited: float) -> Answer: ...

    def inline(self, head: Head, body: bytes, arrived: float) -> Answer | None:
        """An admission's answer computed on the loop (CPU only, no wait), or None."""


class PlainHooks:
    """For an app without hooks of its own (the benchmark's no-op): always alive and ready."""

    deadline_seconds: float | None = None

    def probe(self, path: str, saturated_for: float) -> tuple[int, bytes]:
        return 200, b'{"status": "ok"}'

    def overloaded(self, body: bytes, waited: float) -> Answer:
        return status_line(503), [("Content-Type", "application/json")], json_error(503, "busy")

    def inline(self, head: Head, body: bytes, arrived: float) -> Answer | None:
        return None


def call_wsgi(app: Wsgi, env: dict[str, Any]) -> Answer:
    """Run the app for one request and collect its whole answer (in a pool thread)."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], _exc: Any = None) -> Any:
        started[:] = [status, headers]
        return _no_write

    result = app(env, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return started[0], list(started[1]), body


def _no_write(_data: bytes) -> None:
    raise RuntimeError("the write() callable of WSGI is not supported")


class _Job:
    __slots__ = ("abandoned", "lock", "started")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = False
        self.abandoned = False


class AppPool:
    """The threads that run the app, and how long all of them have been busy."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="admission")
        self._lock = threading.Lock()
        self.busy = 0
        self._saturated_since: float | None = None

    def saturated_for(self) -> float:
        since = self._saturated_since
        return 0.0 if since is None else time.monotonic() - since

    async def run(self, call: Callable[[], Answer], expires: float | None) -> Answer | None:
        """`call()` in a thread; None if it had not started by `expires` (then it never will)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Answer | None] = loop.create_future()
        job = _Job()

        def work() -> None:
            with job.lock:
                if job.abandoned:
                    return
                job.started = True
            self._enter()
            try:
                answer = call()
            except BaseException as err:
                loop.call_soon_threadsafe(_settle, done, None, err)
                return
            finally:
                self._leave()
            loop.call_soon_threadsafe(_settle, done, answer, None)

        self._executor.submit(work)
        timer = None if expires is None else loop.call_at(expires, _expire, job, done)
        try:
            return await done
        finally:
            if timer is not None:
                timer.cancel()

    def _enter(self) -> None:
        with self._lock:
            self.busy += 1
            if self.busy >= self.threads and self._saturated_since is None:
                self._saturated_since = time.monotonic()

    def _leave(self) -> None:
        with self._lock:
            self.busy -= 1
            if self.busy < self.threads:
                self._saturated_since = None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _settle(
    done: asyncio.Future[Answer | None], answer: Answer | None, error: BaseException | None
) -> None:
    if done.done():
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(answer)


def _expire(job: _Job, done: asyncio.Future[Answer | None]) -> None:
    with job.lock:
        if job.started:
            return  # running: the admission's own deadline answers in time
        job.abandoned = True
    if not done.done():
        done.set_result(None)


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
        app: Wsgi,
        listeners: Sequence[socket.socket],
        tls: Callable[[], ssl.SSLContext],
        webhook_port: int,
        threads: int,
        limits: Limits = Limits(),
        hooks: Hooks | None = None,
        seat: Seat | None = None,
    ) -> None:
        """`seat`: this worker's place among the others sharing the listeners (serving.seats)."""
        self.app = app
        self.seat = seat
        self.listeners = list(listeners)
        self.tls = tls
        self.webhook_port = webhook_port
        self.limits = limits
        self.hooks: Hooks = hooks or PlainHooks()
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
            deadline = self.hooks.deadline_seconds
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
            status, headers, payload = await self._answer(head, body, peer, port, arrived)
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
                return b""  # the app answers 400 from the Content-Length alone
        except (TimeoutError, asyncio.IncompleteReadError):
            return None

    async def _answer(
        self, head: Head, body: bytes, peer: Any, port: int, arrived: float
    ) -> Answer:
        admission = port == self.webhook_port
        if admission and head.method == "GET" and head.path in PROBES:
            code, payload = self.hooks.probe(head.path, self.pool.saturated_for())
            return status_line(code), [("Content-Type", "application/json")], payload
        deadline = self.hooks.deadline_seconds
        expires = arrived + deadline if admission and deadline and head.method == "POST" else None
        try:
            if (
                admission
                and head.method == "POST"
                and len(body) <= self.limits.loop_review_max_bytes
            ):
                answer = self.hooks.inline(head, body, arrived)  # a warm review: no thread
                if answer is not None:
                    return answer
            env = environ(head, body, port, peer, {ARRIVED: arrived})
            answer = await self.pool.run(partial(call_wsgi, self.app, env), expires)
        except Exception:
            log.exception("the app failed on %s", head.path)
            return status_line(500), [("Content-Type", "application/json")], json_error(500, "")
        if answer is None:
            metrics.OVERLOADED.labels("deadline").inc()
            return self.hooks.overloaded(body, time.monotonic() - arrived)
        return answer

    async def _refuse(self, writer: asyncio.StreamWriter, code: int, why: str) -> None:
        writer.write(
            response(
                status_line(code),
                [("Content-Type", "application/json")],
                json_error(code, why),
                keep_alive=False,
            )
        )
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(self.limits.write_seconds):
                await writer.drain()


def _port_name(front: Front, port: int) -> str:
    return "admission" if port == front.webhook_port else "admin"
