"""The per-worker bounds (webhook.serving.bounds) and where the front end decides a review.

Room and BodyBudget are driven on a real event loop with real tasks; the
loop-size rule through a Front serving in this process.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

from harness.servers import running_front
from tests.support.fakes import World
from webhook.serving.bounds import SMALL_BODY_BYTES, BodyBudget, Room
from webhook.serving.dispatch import Dispatch
from webhook.serving.front import Limits
from webhook.serving.routes import HttpReply, Request


async def idle_forever() -> None:
    await asyncio.Event().wait()


def test_a_full_room_closes_its_longest_idle_connection_for_a_waiting_client() -> None:
    async def scenario() -> tuple[bool, bool, list[str]]:
        room = Room(bound=2)
        first = asyncio.create_task(idle_forever())
        second = asyncio.create_task(idle_forever())
        for task in (first, second):
            room.entered(task)
            task.add_done_callback(room.left)
        room.working(first)
        room.resting(first)  # `first` served a request: now `second` idles the longest
        closed: list[str] = []

        async def client_waiting() -> None:
            return None

        await asyncio.wait_for(room.make_room(client_waiting, lambda: closed.append("one")), 5)
        survived = not first.done()
        first.cancel()
        await asyncio.gather(first, second, return_exceptions=True)
        return survived, second.cancelled(), closed

    assert asyncio.run(scenario()) == (True, True, ["one"])


def test_a_full_room_with_nobody_idle_waits_for_a_connection_to_end() -> None:
    async def scenario() -> bool:
        room = Room(bound=1)
        busy = asyncio.create_task(idle_forever())
        room.entered(busy)
        busy.add_done_callback(room.left)
        room.working(busy)

        async def client_waiting() -> None:
            raise AssertionError("nobody idles: no connection is closed for a client")

        making = asyncio.create_task(room.make_room(client_waiting, lambda: None))
        await asyncio.sleep(0.05)
        waited = not making.done()
        busy.cancel()
        await asyncio.wait_for(making, 5)
        return waited

    assert asyncio.run(scenario())


def test_no_idle_connection_is_closed_until_a_client_waits() -> None:
    async def scenario() -> bool:
        room = Room(bound=1)
        idle = asyncio.create_task(idle_forever())
        room.entered(idle)
        idle.add_done_callback(room.left)
        arrived = asyncio.Event()
        making = asyncio.create_task(room.make_room(arrived.wait, lambda: None))
        await asyncio.sleep(0.05)
        kept = not idle.cancelled() and not making.done()
        arrived.set()
        await asyncio.wait_for(making, 5)
        return kept and idle.cancelled()

    assert asyncio.run(scenario())


def test_the_budget_keeps_a_quarter_for_ordinary_bodies() -> None:
    async def scenario() -> list[bool]:
        budget = BodyBudget(4 * 1024 * 1024)
        large = 1024 * 1024
        taken = [await budget.take(large, 0) for _ in range(3)]  # three quarters
        taken.append(await budget.take(large, 0.05))  # a fourth large one does not fit
        small = [await budget.take(SMALL_BODY_BYTES, 0) for _ in range(16)]  # the last quarter
        taken.append(all(small))
        taken.append(await budget.take(1, 0.05))  # now the whole budget is held
        budget.give(large)
        taken.append(await budget.take(1, 0))
        return taken

    assert asyncio.run(scenario()) == [True, True, True, False, True, False, True]


def test_a_body_waiting_for_the_budget_takes_it_when_given_back() -> None:
    async def scenario() -> bool:
        budget = BodyBudget(1000)
        assert await budget.take(1000, 0)
        waiting = asyncio.create_task(budget.take(10, 5))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        budget.give(1000)
        return await asyncio.wait_for(waiting, 5) and budget.held == 10

    assert asyncio.run(scenario())


class RecordingDispatch(Dispatch):
    """Where each review was answered: the sizes of those answered on the loop, the threads."""

    def __init__(self) -> None:
        super().__init__(World().admitter(), loop_review_max_bytes=1000)
        self.on_loop_sizes: list[int] = []
        self.threads: list[str] = []

    def review_on_loop(self, request: Request, saturated_for: float = 0.0) -> HttpReply | None:
        reply = super().review_on_loop(request, saturated_for)
        if reply is not None:
            self.on_loop_sizes.append(len(request.body))
        return reply

    def review(self, request: Request) -> HttpReply:
        self.threads.append(threading.current_thread().name)
        return super().review(request)


def post_of(body: bytes) -> bytes:
    return (
        f"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def test_a_review_over_the_loop_size_is_never_tried_on_the_loop(tmp_path: Path) -> None:
    """It goes straight to an admission thread, even when it needs no lookup at all."""
    routes = RecordingDispatch()
    with running_front(tmp_path, routes) as front:
        for size in (1000, 1001, 200_000):
            body = json.dumps({"pad": "x" * (size - 11)}).encode()
            assert len(body) == size
            # Not a review: refused (400) without a lookup, on the loop or in a thread.
            assert front.exchange(post_of(body)).startswith(b"HTTP/1.1 400")
    assert routes.on_loop_sizes == [1000]
    assert len(routes.threads) == 2
    assert all(name.startswith("admission") for name in routes.threads)


def test_a_body_over_the_limit_is_refused_by_the_front_end_saying_the_limit(
    tmp_path: Path,
) -> None:
    routes = RecordingDispatch()
    with running_front(tmp_path, routes, Limits(max_body_bytes=64 * 1024)) as front:
        answer = front.exchange(post_of(b"x" * (65 * 1024)))
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"the body is larger than the limit of 65536 bytes" in answer
    assert (routes.on_loop_sizes, routes.threads) == ([], [])  # never reached the routes
