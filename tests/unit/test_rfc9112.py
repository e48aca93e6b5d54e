"""The parser against RFC 9112's table (tests/rfc9112.py): each shape gets the answer it is owed.

The same rows go to the real server in tests/integration/test_front.py.
"""

from __future__ import annotations

import pytest

from tests.support.rfc9112 import SHAPES, Shape
from webhook.serving.httpwire import BadRequest, Head, head_end, parse_head

LIMIT = 65536


def read_head(wire: bytes) -> Head:
    """What the front end does with the bytes of one request: find the head, parse it."""
    buffer = bytearray(wire)
    end = head_end(buffer, LIMIT)
    assert end > 0, "the head never ended"
    return parse_head(bytes(buffer[:end]))


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_each_shape_gets_its_answer(shape: Shape) -> None:
    if not shape.refused:
        assert read_head(shape.wire).path == "/healthz"
        return
    with pytest.raises(BadRequest) as caught:
        read_head(shape.wire)
    assert caught.value.status == shape.status, str(caught.value)
    assert str(caught.value), "a refusal says why"


def test_the_smuggled_length_is_named() -> None:
    (shape,) = [s for s in SHAPES if s.name.startswith("bare LF inside")]
    with pytest.raises(BadRequest, match="bare LF"):
        read_head(shape.wire)


def test_a_length_in_superscript_digits_is_refused_not_crashed() -> None:
    """'²'.isdigit() is True and int('²') raises: ASCII digits only."""
    with pytest.raises(BadRequest, match="Content-Length"):
        parse_head(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n")


def test_an_incomplete_head_is_waited_for_until_it_shows_a_bare_lf() -> None:
    assert head_end(bytearray(b"GET / HTTP/1.1\r\nHost: x\r\n"), LIMIT) == -1
    assert head_end(bytearray(b"GET / HTTP/1.1\r"), LIMIT) == -1  # its LF may come next
    with pytest.raises(BadRequest, match="bare LF"):
        head_end(bytearray(b"GET / HTTP/1.1\nHost"), LIMIT)


def test_a_head_over_the_limit_is_431_complete_or_not() -> None:
    big = b"GET / HTTP/1.1\r\nX-A: " + b"a" * 100
    with pytest.raises(BadRequest) as caught:
        head_end(bytearray(big), 64)
    assert caught.value.status == 431
    with pytest.raises(BadRequest) as caught:
        head_end(bytearray(big + b"\r\n\r\n"), 64)
    assert caught.value.status == 431


def test_leading_empty_lines_are_dropped_and_the_body_stays() -> None:
    buffer = bytearray(b"\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    end = head_end(buffer, LIMIT)
    assert bytes(buffer[end:]) == b"{}"
    assert parse_head(bytes(buffer[:end])).content_length == 2
