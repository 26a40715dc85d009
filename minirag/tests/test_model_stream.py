"""A streamed answer holds little and costs little while it streams (minirag/model_gateway.py).

Without a LiteLLM callback the gateway reads the provider's own stream under LiteLLM's wrapper and
lets the wrapper go: every provider's stream gives the same answer and usage as through the
wrapper, and a broken, failing or looping stream fails as it did. With a callback, the wrapper is
read: its history of the answer's chunks stays a few chunks long, and what LiteLLM rebuilds from it
at the end is the same answer, usage and finish reason as from every chunk."""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from asgiref.sync import async_to_sync

from minirag import model_gateway
from minirag.model_gateway import CompletionStream, Endpoint, ModelError, _ShortChunkHistory
from providers.tests.fake_provider import FakeProvider

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
def litellm_callback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A LiteLLM logging callback registered (an operator's own, say): streams go through LiteLLM's
    wrapper. Every list LiteLLM copies callbacks into is restored afterwards."""
    from litellm.integrations.custom_logger import CustomLogger

    litellm = model_gateway._litellm()
    for name in ("callbacks", "success_callback", "_async_success_callback", "failure_callback"):
        monkeypatch.setattr(litellm, name, list(getattr(litellm, name)))
    monkeypatch.setattr(litellm, "_async_failure_callback", list(litellm._async_failure_callback))
    litellm.callbacks.append(CustomLogger())
    yield


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


def test_an_open_stream_keeps_a_few_chunks_and_litellm_rebuilds_the_whole_answer(
    mocked_answer: list[Any], litellm_callback: None
) -> None:
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


# --- Read directly: the provider's stream under LiteLLM's wrapper -------------------------------


def _read(stream: CompletionStream) -> tuple[str, int, int]:
    async def read() -> str:
        return "".join([delta async for delta in stream])

    text = async_to_sync(read)()
    return text, stream.prompt_tokens, stream.completion_tokens


def _streamed(model: str, endpoint: Endpoint = model_gateway.PUBLIC_ENDPOINT) -> tuple[str, int, int]:
    """A model's answer and usage, the stream started and read in one event loop (as a turn does)."""

    async def start_and_read() -> tuple[str, int, int]:
        stream = await model_gateway.astream(
            model=model, messages=MESSAGES, temperature=0, max_tokens=200, endpoint=endpoint
        )
        text = "".join([delta async for delta in stream])
        return text, stream.prompt_tokens, stream.completion_tokens

    return async_to_sync(start_and_read)()


def test_an_answer_is_read_from_the_providers_stream_and_litellms_wrapper_is_let_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    litellm = model_gateway._litellm()
    real = litellm.acompletion
    wrappers: list[weakref.ref[Any]] = []

    async def answering(**kwargs: Any) -> Any:
        stream = await real(**kwargs, mock_response=ANSWER)
        wrappers.append(weakref.ref(stream))
        return stream

    monkeypatch.setattr(litellm, "acompletion", answering)

    async def read() -> tuple[str, bool, CompletionStream]:
        stream = await model_gateway.astream(model="gpt-4o-mini", messages=MESSAGES, temperature=0, max_tokens=900)
        deltas = aiter(stream)
        text = await anext(deltas)
        for _ in range(3):  # the loop runs the callbacks of LiteLLM's finished call (holding its result)
            await asyncio.sleep(0)
        gc.collect()
        let_go = wrappers[0]() is None  # streaming on, without the wrapper or its logging state
        async for delta in deltas:
            text += delta
        return text, let_go, stream

    text, let_go, stream = async_to_sync(read)()
    assert let_go and text == ANSWER
    assert stream.completion_tokens > 100 and stream.prompt_tokens > 0


PROVIDER_STREAMS = {
    "openai": ("openai/fake-chat", "/v1", {}),
    "azure": ("azure/fake-chat", "", {"api_version": "2024-06-01"}),
    "ollama": ("ollama/fake-chat", "", {}),
    "ollama_chat": ("ollama_chat/fake-chat", "", {}),
}


@pytest.mark.parametrize("provider", sorted(PROVIDER_STREAMS))
def test_every_providers_stream_reads_as_through_litellms_wrapper(
    provider: str, settings: Any, request: pytest.FixtureRequest
) -> None:
    """The same answer and usage, read directly and through the wrapper (a callback registered),
    from each API the fake provider speaks over HTTP (OpenAI's and Azure's SDK chunks; LiteLLM's
    parsed Ollama chunks and its generic chunk for Ollama's last)."""
    settings.MODEL_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    model, path, extra = PROVIDER_STREAMS[provider]
    with FakeProvider() as fake:
        fake.reply = "Orders ship within two working days."
        endpoint = Endpoint(api_key="sk-test", api_base=fake.url + path, **extra)
        direct = _streamed(model, endpoint)
        request.getfixturevalue("litellm_callback")
        through_the_wrapper = _streamed(model, endpoint)

    assert direct == through_the_wrapper
    assert direct[0] == "Orders ship within two working days." and direct[1] > 0 and direct[2] > 0


@pytest.mark.parametrize("provider", sorted(PROVIDER_STREAMS))
def test_a_stream_closed_mid_answer_closes_the_providers_connection(provider: str, settings: Any) -> None:
    """The visitor left: closing the stream closes the connection to the provider (which stops
    generating, and billing), though the gateway let LiteLLM's wrapper go."""
    settings.MODEL_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    model, path, extra = PROVIDER_STREAMS[provider]

    async def leave_after_one_delta(fake: FakeProvider) -> int:
        endpoint = Endpoint(api_key="sk-test", api_base=fake.url + path, **extra)
        stream = await model_gateway.astream(
            model=model, messages=MESSAGES, temperature=0, max_tokens=200, endpoint=endpoint
        )
        deltas = aiter(stream)
        await anext(deltas)
        await stream.aclose()
        for _ in range(50):  # the server sees the connection closed once it writes to it again
            if not fake.open_connections:
                break
            await asyncio.sleep(0.05)
        return fake.open_connections

    with FakeProvider() as fake:
        fake.reply = " ".join(f"word{number}" for number in range(100_000))  # more than the sockets buffer
        assert async_to_sync(leave_after_one_delta)(fake) == 0


def test_the_offline_models_generic_chunks_read_as_through_litellms_wrapper(request: pytest.FixtureRequest) -> None:
    direct = _streamed("local/extractive")
    request.getfixturevalue("litellm_callback")
    assert direct == _streamed("local/extractive") and direct[0]


async def _lines(lines: list[str]) -> AsyncIterator[str]:
    for line in lines:
        yield line


def test_anthropic_and_gemini_streams_as_litellm_parses_them() -> None:
    """The parsers LiteLLM hands over as the stream for Anthropic and Gemini (no fake server speaks
    their APIs): Anthropic counts the prompt when the message starts and the answer when it ends;
    Gemini sends its running counts with every chunk. The latest count of each is the usage."""
    from litellm.llms.anthropic.chat.handler import ModelResponseIterator as AnthropicStream
    from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import (
        ModelResponseIterator as GeminiStream,
    )

    anthropic = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": "claude",
                "usage": {"input_tokens": 25, "output_tokens": 1},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Orders ship"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " in two days."}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}},
        {"type": "message_stop"},
    ]
    source = AnthropicStream(
        streaming_response=_lines([f"data: {json.dumps(event)}" for event in anthropic]), sync_stream=False
    )
    assert _read(CompletionStream(source, "anthropic/claude", MESSAGES)) == ("Orders ship in two days.", 25, 7)

    def gemini_chunk(text: str, answer_tokens: int, **candidate: Any) -> str:
        return "data: " + json.dumps(
            {
                "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0, **candidate}],
                "usageMetadata": {
                    "promptTokenCount": 9,
                    "candidatesTokenCount": answer_tokens,
                    "totalTokenCount": 9 + answer_tokens,
                },
            }
        )

    gemini = [gemini_chunk("Orders ship ", 2), gemini_chunk("in two days.", 5, finishReason="STOP")]
    logging_state = SimpleNamespace(optional_params={}, model_call_details={})
    source = GeminiStream(streaming_response=_lines(gemini), sync_stream=False, logging_obj=logging_state)
    assert _read(CompletionStream(source, "gemini/gemini-flash", MESSAGES)) == ("Orders ship in two days.", 9, 5)


def _provider(*chunks: Any, then: Exception | None = None) -> AsyncIterator[Any]:
    async def stream() -> AsyncIterator[Any]:
        for chunk in chunks:
            yield chunk
        if then is not None:
            raise then

    return stream()


def _text(text: str, finish_reason: str = "") -> dict[str, Any]:
    return {"text": text, "is_finished": bool(finish_reason), "finish_reason": finish_reason, "usage": None}


def test_a_connection_that_drops_mid_answer_fails_and_after_the_finish_reason_ends_the_answer() -> None:
    dropped = httpx.ReadError("connection reset", request=httpx.Request("POST", "https://api.openai.com/v1/chat"))
    broken = CompletionStream(_provider(_text("Orders "), then=dropped), "openai/gpt-4o-mini", MESSAGES)
    with pytest.raises(ModelError) as failure:
        _read(broken)
    assert failure.value.transient and "connection" in failure.value.message

    ended = CompletionStream(
        _provider(_text("Orders "), _text("ship.", finish_reason="stop"), then=dropped), "openai/gpt-4o-mini", MESSAGES
    )
    assert _read(ended)[0] == "Orders ship."


def test_a_stream_that_ends_in_error_or_repeats_itself_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError) as failure:
        _read(CompletionStream(_provider(_text("Orders "), _text("", "error")), "openai/gpt-4o-mini", MESSAGES))
    assert failure.value.transient

    monkeypatch.setattr(model_gateway._litellm(), "REPEATED_STREAMING_CHUNK_LIMIT", 5)
    looping = CompletionStream(_provider(*[_text("again and ")] * 5), "openai/gpt-4o-mini", MESSAGES)
    with pytest.raises(ModelError, match="repeating itself"):
        _read(looping)
    varied = CompletionStream(_provider(*[_text(f"word{n} ") for n in range(10)]), "openai/gpt-4o-mini", MESSAGES)
    assert _read(varied)[0].count("word") == 10
