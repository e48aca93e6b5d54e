"""The connection counts the workers share: who should leave a connection to the others."""

from __future__ import annotations

import os

from webhook.serving.seats import Seat, Seats


def test_a_worker_holding_more_than_another_live_one_is_crowded() -> None:
    seats = Seats(4)
    first, second = seats.take(), seats.take()
    assert (first, second) == (0, 1)
    a, b = Seat(seats, 0), Seat(seats, 1)
    assert not a.crowded(0)
    assert not b.crowded(0)
    a.publish(1)
    assert a.crowded(1)  # b holds none: leave the next one to b
    assert not b.crowded(0)
    b.publish(1)
    assert not a.crowded(1)
    assert not b.crowded(1)


def test_free_seats_and_exited_workers_do_not_count() -> None:
    seats = Seats(3)
    first, second = seats.take(), seats.take()
    assert first is not None
    assert second is not None
    Seat(seats, first).publish(5)
    assert not Seat(seats, second).crowded(5)  # the third seat is free, not a worker with 0
    seats.free(second)
    assert not Seat(seats, first).crowded(9)  # alone now
    assert seats.take() == second  # the seat is given again, with its count reset
    assert Seat(seats, first).crowded(5)


def test_more_workers_than_seats_go_unbalanced() -> None:
    seats = Seats(1)
    assert seats.take() == 0
    assert seats.take() is None
    seats.free(None)  # what the master calls for such a worker: nothing happens


def test_the_counts_are_shared_through_the_fork() -> None:
    seats = Seats(2)
    parent, child = seats.take(), seats.take()
    assert parent is not None
    assert child is not None
    pid = os.fork()
    if pid == 0:  # the worker: publish, then leave without running pytest's exit handlers
        Seat(seats, child).publish(3)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert Seat(seats, parent).crowded(4)
    assert not Seat(seats, parent).crowded(3)
