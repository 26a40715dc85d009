"""A streamed answer's keep-alive comments (chat/turns.py `_with_heartbeats`): a heartbeat whenever
the model is quiet for the interval, never at the cost of a delta; deltas that arrived together come
out together; a failure comes out where it happened; a visitor who leaves stops the reading of the
model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from chat.turns import _with_heartbeats
from minirag.model_gateway import ModelError


async def _collect(deltas: AsyncIterator[str], interval: float) -> list[list[str] | None]:
    return [batch async for batch in _with_heartbeats(deltas, interval)]


def _deltas(out: list[list[str] | None]) -> list[str]:
    return [delta for batch in out if batch is not None for delta in batch]


def test_a_quiet_model_gets_heartbeats_and_its_deltas_arrive_whole_and_in_order() -> None:
    reads_interrupted = 0

    async def model() -> AsyncIterator[str]:
        nonlocal reads_interrupted
        yield "Orders "
        try:
            await asyncio.sleep(0.35)  # thinking: several intervals pass
        except asyncio.CancelledError:
            reads_interrupted += 1
            raise
        yield "ship "
        yield "today."

    out = asyncio.run(_collect(model(), 0.1))
    assert _deltas(out) == ["Orders ", "ship ", "today."]
    assert out[0] == ["Orders "] and out[-1] == ["ship ", "today."]  # the last two arrived together
    assert out.count(None) >= 2  # the quiet gap was filled with heartbeats
    assert reads_interrupted == 0  # a heartbeat never cancels the read in progress


def test_a_prompt_model_gets_no_heartbeat() -> None:
    async def model() -> AsyncIterator[str]:
        for word in ("a ", "b ", "c"):
            await asyncio.sleep(0)
            yield word

    out = asyncio.run(_collect(model(), 5))
    assert None not in out and _deltas(out) == ["a ", "b ", "c"]


def test_a_failure_mid_answer_comes_out_after_the_deltas_before_it() -> None:
    async def model() -> AsyncIterator[str]:
        yield "Orders "
        raise ModelError("The model went silent.", transient=True)

    async def scenario() -> tuple[list[list[str] | None], ModelError | None]:
        seen: list[list[str] | None] = []
        try:
            async for batch in _with_heartbeats(model(), 5):
                seen.append(batch)
        except ModelError as error:
            return seen, error
        return seen, None

    seen, error = asyncio.run(scenario())
    assert seen == [["Orders "]]
    assert error is not None and error.message == "The model went silent."


def test_a_visitor_who_leaves_stops_the_reading_of_the_model() -> None:
    async def scenario() -> bool:
        reading_stopped = asyncio.Event()

        async def model() -> AsyncIterator[str]:
            try:
                yield "Orders "
                await asyncio.sleep(60)  # a long answer still being written
                yield "never"
            finally:
                reading_stopped.set()

        stream = _with_heartbeats(model(), 5)
        assert await anext(stream) == ["Orders "]
        waiting = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.05)  # the read of the next delta is in progress
        waiting.cancel()  # the visitor left: the response is cancelled, then closed
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await stream.aclose()
        await asyncio.wait_for(reading_stopped.wait(), 2)
        return reading_stopped.is_set()

    assert asyncio.run(scenario())


def test_a_backlog_of_deltas_comes_out_in_one_batch_whole_and_in_order() -> None:
    """A model that sends faster than the stream is written: what waits is handed over at once
    (written in one send by the caller), not one delta per turn of the event loop."""

    async def model() -> AsyncIterator[str]:
        for number in range(50):
            yield f"w{number} "  # all at once, no await

    assert asyncio.run(_collect(model(), 5)) == [[f"w{number} " for number in range(50)]]


def test_deltas_that_arrive_while_a_batch_is_written_come_in_the_next_one() -> None:
    async def scenario() -> list[list[str] | None]:
        release = asyncio.Event()

        async def model() -> AsyncIterator[str]:
            yield "one "
            await release.wait()
            yield "two "
            yield "three"

        out: list[list[str] | None] = []
        async for batch in _with_heartbeats(model(), 5):
            out.append(batch)
            if batch == ["one "]:
                release.set()
                await asyncio.sleep(0.01)  # a slow write: the model sends meanwhile
        return out

    assert asyncio.run(scenario()) == [["one "], ["two ", "three"]]
