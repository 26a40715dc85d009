"""A streamed answer holds little while it streams (minirag/model_gateway.py): LiteLLM's history of
the answer's chunks stays a few chunks long, and what LiteLLM rebuilds from it at the end is the
same answer, usage and finish reason as from every chunk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from minirag import model_gateway
from minirag.model_gateway import CompletionStream, _ShortChunkHistory

MESSAGES = [{"role": "user", "content": "Tell me about shipping."}]
ANSWER = " ".join(f"word{number}" for number in range(400))


def _chunk(*, usage: Any = None, finish_reason: str | None = None, **delta: Any) -> Any:
    from litellm.types.utils import Delta, ModelResponseStream, StreamingChoices

    chunk = ModelResponseStream(
        id="chatcmpl-1",
        model="gpt-4o-mini",
        choices=[StreamingChoices(index=0, delta=Delta(**delta), finish_reason=finish_reason)],
    )
    if usage is not None:
        chunk.usage = usage
    return chunk


def _rebuilt(chunks: list[Any]) -> Any:
    return model_gateway._litellm().stream_chunk_builder(chunks=list(chunks), messages=MESSAGES)


@pytest.fixture
def mocked_answer(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Completions answer ANSWER through LiteLLM's own mock (a stream of a chunk per few characters);
    the list receives each stream LiteLLM returned."""
    litellm = model_gateway._litellm()
    real = litellm.acompletion
    streams: list[Any] = []

    async def answering(**kwargs: Any) -> Any:
        stream = await real(**kwargs, mock_response=ANSWER)
        streams.append(stream)
        return stream

    monkeypatch.setattr(litellm, "acompletion", answering)
    return streams


def test_an_open_stream_keeps_a_few_chunks_and_litellm_rebuilds_the_whole_answer(mocked_answer: list[Any]) -> None:
    async def stream() -> tuple[list[str], list[int], CompletionStream]:
        answer = await model_gateway.astream(model="gpt-4o-mini", messages=MESSAGES, temperature=0, max_tokens=900)
        deltas, held = [], []
        async for delta in answer:
            deltas.append(delta)
            held.append(len(mocked_answer[0].chunks))
        return deltas, held, answer

    deltas, held, answer = async_to_sync(stream)()
    assert "".join(deltas) == ANSWER and len(deltas) > 100
    assert isinstance(mocked_answer[0].chunks, _ShortChunkHistory)
    assert max(held) < _ShortChunkHistory.COMPACT_AT  # never the whole answer: a few chunks at any time
    rebuilt = _rebuilt(mocked_answer[0].chunks)
    assert rebuilt.choices[0].message.content == ANSWER
    assert rebuilt.usage.completion_tokens == answer.completion_tokens > 100


def test_the_short_history_rebuilds_what_the_whole_one_does() -> None:
    """Reasoning first, then text, then the finish reason and the usage: the same rebuilt response
    from the short history as from every chunk; the chunks handed out are never changed."""
    from litellm.types.utils import Usage

    texts = [f"part{number} " for number in range(40)]
    whole = [
        _chunk(role="assistant", reasoning_content="Think first. "),
        _chunk(reasoning_content="Then answer."),
        *[_chunk(content=text) for text in texts],
        _chunk(content="", finish_reason="stop"),
        _chunk(usage=Usage(prompt_tokens=11, completion_tokens=40, total_tokens=51)),
    ]
    short = _ShortChunkHistory()
    for chunk in whole:
        short.append(chunk)

    assert len(short) < 8
    assert short[0] is whole[0] and short[1] is whole[1]  # reasoning is kept whole
    assert [chunk.choices[0].delta.content for chunk in whole[2:-2]] == texts  # untouched
    expected, got = _rebuilt(whole), _rebuilt(short)
    assert got.choices[0].message.content == expected.choices[0].message.content == "".join(texts)
    assert got.choices[0].message.reasoning_content == expected.choices[0].message.reasoning_content
    assert got.choices[0].finish_reason == expected.choices[0].finish_reason == "stop"
    assert (got.usage.prompt_tokens, got.usage.completion_tokens) == (11, 40)


def test_a_stream_without_usage_is_counted_from_its_text() -> None:
    """A provider (or proxy) that sends no usage: the answer is counted, not recorded as free."""

    async def provider() -> AsyncIterator[Any]:
        for word in ("Orders ", "ship ", "within ", "two ", "days."):
            yield SimpleNamespace(choices=[SimpleNamespace(delta=SimpleNamespace(content=word))], usage=None)

    async def read() -> tuple[str, CompletionStream]:
        stream = CompletionStream(provider(), "gpt-4o-mini", MESSAGES)
        return "".join([delta async for delta in stream]), stream

    text, stream = async_to_sync(read)()
    assert text == "Orders ship within two days."
    assert stream.completion_tokens == model_gateway._litellm().token_counter(model="gpt-4o-mini", text=text) > 0
    assert stream.prompt_tokens == model_gateway._litellm().token_counter(model="gpt-4o-mini", messages=MESSAGES) > 0
