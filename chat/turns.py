"""A chat turn after its user message is stored: retrieve, refuse or answer, record.

Grounded or silent: when nothing passes the bot's similarity floor the bot's refusal message is
the answer, no model is called, and the question joins the unanswered list. Otherwise the model
answers from the numbered context and cites it.

`answer()` returns the whole turn (non-streaming). `stream()` yields the v1 server-sent events:
`sources` once, `delta` for each piece of text, then `done` after the message is stored — or
`error` with a readable reason. A streamed answer interrupted by the client is stored as far as
it got; a model failure never loses the user's message (it was stored before).

The bot's `model` answers, or, when it fails in a way that may pass (timeout, rate limit, server
error) before its first word, each of its `fallback_models` in turn. Every failed attempt is
counted under its model; the answer is stored and counted under the model that gave it.

Admission (chat/admission.py): the view hands over the turn's `Ticket`, holding a slot of the
admission gate. The turn gives it back as soon as its prompt is built (or it ends early), so the
model call — waiting for a provider — runs outside the gate, alongside every other admitted turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async

from chat.admission import Ticket
from chat.models import Message
from chat.prompting import build_messages, context_items
from chat.retrieval import Retrieval, RetrievedChunk, retrieve
from chat.services import AnswerRecord, PreparedTurn, citation, record_answer, record_failure
from minirag.db import releasing_connection
from minirag.errors import ApplicationError
from minirag.model_gateway import Endpoint, ModelError, acomplete, astream
from minirag.vectorstore import is_vector_store_outage, vector_store_error_message
from tenants.tenancy import tenant_scope

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0


class ModelUnavailableError(ApplicationError):
    """The model provider failed in a way that may pass (rate limit, outage, timeout): 503."""

    status_code = 503


class ModelFailedError(ApplicationError):
    """The model provider refused the request (bad key, unknown model, bad request): 502."""

    status_code = 502


class KnowledgeUnavailableError(ApplicationError):
    """The vector store could not be searched (down, restarting, overloaded): 503."""

    status_code = 503


def _as_api_error(error: ModelError, turn: PreparedTurn) -> ApplicationError:
    # The provider's own message helps the tenant's staff; a website visitor (a bot token) gets
    # the plain sentence, without the model name or the provider's internals. The usage record
    # keeps the full message for the tenant either way.
    reason = "" if turn.for_visitor else f" ({error.message})"
    if error.transient:
        return ModelUnavailableError(f"The model is unavailable right now; please try again.{reason}")
    return ModelFailedError(f"The model could not answer.{reason}")


def _usage(model: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "model": model,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _grounding(turn: PreparedTurn, retrieval: Retrieval) -> tuple[list[RetrievedChunk], list[dict[str, str]]]:
    """The chunks the prompt will hold (within the context budget), and the prompt."""
    items = context_items(retrieval.chunks)
    used = retrieval.chunks[: len(items)]
    messages = build_messages(
        system_prompt=turn.bot.system_prompt, items=items, history=turn.history, question=turn.question
    )
    return used, messages


def _refusal(turn: PreparedTurn, retrieval: Retrieval, streamed: bool) -> AnswerRecord:
    return AnswerRecord(
        content=turn.bot.refusal_message,
        outcome=Message.Outcome.REFUSED,
        model=turn.bot.model,
        streamed=streamed,
        best_score=retrieval.best_local_score,
        searched_question=_searched(retrieval),
    )


def _searched(retrieval: Retrieval) -> str:
    return retrieval.searched.text if retrieval.searched else ""


async def _retrieve(turn: PreparedTurn, *, streamed: bool, admission: Ticket | None = None) -> Retrieval:
    """The turn's retrieval. A failure of the embedding model is re-raised as is; a vector store
    outage becomes KnowledgeUnavailableError. Either is counted in the usage first."""
    try:
        return await retrieve(
            tenant_id=turn.tenant_id,
            bot=turn.bot,
            question=turn.question,
            history=turn.history,
            admission=admission,
        )
    except ModelError as error:  # the embedding model failed
        await _record_failure(turn, model=turn.bot.embedding_model, error=error.message, streamed=streamed)
        raise
    except Exception as exc:
        if not is_vector_store_outage(exc):
            raise
        reason = vector_store_error_message(exc)
        logger.warning("Retrieval for chat %s failed: %s", turn.chat_id, reason)
        await _record_failure(turn, model=turn.bot.embedding_model, error=reason, streamed=streamed)
        # As for model failures: the tenant's staff see the cause, a website visitor does not.
        detail = "The knowledge base is unavailable right now; please try again."
        raise KnowledgeUnavailableError(detail if turn.for_visitor else f"{detail} ({reason})") from exc


def _response(turn: PreparedTurn, message: Message, chunks: list[RetrievedChunk]) -> dict[str, Any]:
    from chat.serializers import MessageSerializer

    return {
        "chat_id": str(turn.chat_id),
        "message": MessageSerializer(message).data,
        "sources": [citation(chunk) for chunk in chunks],
        "usage": _usage(message.model, message.prompt_tokens, message.completion_tokens),
    }


async def answer(turn: PreparedTurn, *, admission: Ticket | None = None) -> dict[str, Any]:
    """The whole turn; raises ModelUnavailableError or KnowledgeUnavailableError (503), or
    ModelFailedError (502). For a chat a person handles, the stored message (see `for_person`).
    `admission` (holding a slot) is released once the prompt is built, or when the turn ends."""
    try:
        return await _answer(turn, admission)
    finally:
        _release(admission)


def _release(admission: Ticket | None) -> None:
    if admission is not None:
        admission.release()


async def _answer(turn: PreparedTurn, admission: Ticket | None) -> dict[str, Any]:
    if turn.for_person:
        _release(admission)
        return await sync_to_async(releasing_connection(for_person))(turn)
    try:
        retrieval = await _retrieve(turn, streamed=False, admission=admission)
    except ModelError as error:
        raise _as_api_error(error, turn) from error
    if not retrieval.chunks:
        _release(admission)
        message = await _record_answer(turn, _refusal(turn, retrieval, streamed=False))
        return _response(turn, message, [])
    used, prompt = _grounding(turn, retrieval)
    _release(admission)  # the CPU-bound phase is over: the model call waits outside the gate
    try:
        model, completion = await _with_fallbacks(turn, prompt, acomplete, streamed=False)
    except ModelError as error:
        raise _as_api_error(error, turn) from error
    record = AnswerRecord(
        content=completion.text,
        outcome=Message.Outcome.ANSWERED,
        model=model,
        chunks=used,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        best_score=retrieval.best_local_score,
        searched_question=_searched(retrieval),
    )
    message = await _record_answer(turn, record)
    return _response(turn, message, used)


def _bot_endpoint(bot: Any, model: str) -> Endpoint:
    from bots.services import bot_model_endpoint

    return bot_model_endpoint(bot, model)


# The database steps of a turn, run in the request's thread, each giving its connection back.
_record_answer = sync_to_async(releasing_connection(record_answer))
_record_failure = sync_to_async(releasing_connection(record_failure))
_endpoint_through_connection = sync_to_async(releasing_connection(_bot_endpoint))


async def _endpoint(bot: Any, model: str) -> Endpoint:
    """How the turn reaches `model`. Only a bot's named connection is read from the database; a bot
    without one has its endpoint in its own row, so it is worked out here, without a trip to a thread."""
    if bot.connection_id is None:
        return _bot_endpoint(bot, model)
    return await _endpoint_through_connection(bot, model)


async def _with_fallbacks(
    turn: PreparedTurn, prompt: list[dict[str, str]], call: Any, *, streamed: bool
) -> tuple[str, Any]:
    """`call` (`acomplete` or `astream`) with the bot's chat models in turn: the first that answers,
    and its name. A transient failure moves on to the next model (the next model is the retry, so a
    model with a successor is not retried itself); a permanent one (bad key, unknown model) ends the
    turn, as does the last model's failure. Every failure is counted under its model."""
    bot = turn.bot
    models = bot.answering_models
    for position, model in enumerate(models):
        last = position == len(models) - 1
        endpoint = await _endpoint(bot, model)
        try:
            answer = await call(
                model=model,
                messages=prompt,
                temperature=bot.temperature,
                max_tokens=bot.max_tokens,
                endpoint=endpoint,
                retry=last,
            )
        except ModelError as error:
            final = last or not error.transient
            await _record_failure(turn, model=model, error=error.message, streamed=streamed, final=final)
            if final:
                raise
            logger.warning(
                "Chat %s: %s failed (%s); trying %s.", turn.chat_id, model, error.message, models[position + 1]
            )
            continue
        return model, answer
    raise AssertionError("a bot always has a chat model")


# --- Streaming --------------------------------------------------------------------------------


def sse(event: str, data: dict[str, Any]) -> str:
    """One event, exactly `event: <name>\\ndata: <one-line JSON>\\n\\n`."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(', ', ': '))}\n\n"


HEARTBEAT = ": keep-alive\n\n"


async def _with_heartbeats(deltas: AsyncIterator[str], interval: float) -> AsyncIterator[list[str] | None]:
    """The deltas, in order, in batches: every delta that arrived since the caller last took some
    (usually one; several when the model sends faster than the stream is written, as under load), and
    None whenever `interval` passes without one (so a comment keeps the connection alive through
    proxies while a slow model thinks). The caller writes a batch in one send: the same events,
    fewer trips through the ASGI layers and system calls to write the socket.

    One task of its own reads the deltas as the model sends them and hands them over in a list: a
    heartbeat never interrupts a read (cancelling it would break the model's stream), and a delta
    costs an append and a wake-up, not a task of its own (an open stream holds a list, a future and
    the reading task). The reading never waits for the visitor's connection: what a slow
    connection has not taken yet waits in the list (at most the answer). It is cancelled when the
    caller stops."""
    arrived: list[str] = []
    ended: list[Exception | None] = []  # once the deltas end: None, or the failure that ended them
    waiting: asyncio.Future[None] | None = None

    def wake() -> None:
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    async def read() -> None:
        try:
            async for delta in deltas:
                arrived.append(delta)
                wake()
            ended.append(None)
        except Exception as exc:  # noqa: BLE001 - handed to the caller, raised where it reads
            ended.append(exc)
        wake()

    reader = asyncio.ensure_future(read())
    try:
        while True:
            if arrived:
                batch = arrived.copy()
                arrived.clear()  # before the yield: the reader may append while the batch is written
                yield batch
            elif ended:
                if ended[0] is not None:
                    raise ended[0]
                return
            else:
                waiting = asyncio.get_running_loop().create_future()
                try:
                    async with asyncio.timeout(interval):
                        await waiting
                except TimeoutError:
                    yield None
    finally:
        reader.cancel()


async def stream(turn: PreparedTurn, *, admission: Ticket | None = None) -> AsyncIterator[str]:
    """The v1 event stream of one turn (see the module docstring). `admission` (holding a slot)
    is released once the prompt is built, or when the stream ends or is closed."""
    try:
        async for event in _stream(turn, admission):
            yield event
    finally:
        _release(admission)


async def _stream(turn: PreparedTurn, admission: Ticket | None) -> AsyncIterator[str]:
    if turn.for_person:  # a person handles the chat: nothing for a model to do
        _release(admission)
        async for event in stream_for_person(turn):
            yield event
        return
    try:
        retrieval = await _retrieve(turn, streamed=True, admission=admission)
    except ModelError as error:
        yield sse("error", {"detail": _as_api_error(error, turn).detail})
        return
    except KnowledgeUnavailableError as error:
        yield sse("error", {"detail": error.detail})
        return
    except Exception:
        logger.exception("Retrieval failed for chat %s.", turn.chat_id)
        yield sse("error", {"detail": "The answer could not be prepared; please try again."})
        return

    if not retrieval.chunks:
        _release(admission)
        yield sse("sources", {"sources": []})
        message = await _record_answer(turn, _refusal(turn, retrieval, streamed=True))
        yield sse("delta", {"content": message.content})
        yield sse("done", _done(turn, message))
        return

    used, prompt = _grounding(turn, retrieval)
    # What the stored answer needs of the search; the rest (every candidate) is not kept while the
    # answer streams.
    searched, best_score = _searched(retrieval), retrieval.best_local_score
    del retrieval
    _release(admission)  # the CPU-bound phase is over: the model call waits outside the gate
    yield sse("sources", {"sources": [citation(chunk) for chunk in used]})
    try:
        model, generation = await _with_fallbacks(turn, prompt, astream, streamed=True)
    except ModelError as error:
        yield sse("error", {"detail": _as_api_error(error, turn).detail})
        return

    said = ""  # the answer so far, one string (a list of its deltas would hold an object per token)
    first_token_ms: int | None = None
    failure: ModelError | None = None
    complete = False
    try:
        async for deltas in _with_heartbeats(generation, HEARTBEAT_SECONDS):
            if deltas is None:
                yield HEARTBEAT
                continue
            if first_token_ms is None:
                first_token_ms = turn.elapsed_ms()
            said += "".join(deltas)
            yield "".join(sse("delta", {"content": delta}) for delta in deltas)  # one event per delta
        complete = True
    except ModelError as error:
        failure = error
    finally:
        if not complete and failure is None:
            # The client went away (the request is being cancelled): stop the model, and store
            # what was already sent, shielded so that the cancellation cannot interrupt it.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await generation.aclose()
            if said:
                partial = _partial(turn, model, said, used, first_token_ms, searched)
                await _shielded(record_answer, turn, partial)

    if failure is not None:
        # The model failed mid-answer: keep what it said, count the failure, say why it stopped.
        if said:
            await _record_answer(turn, _partial(turn, model, said, used, first_token_ms, searched))
        await _record_failure(turn, model=model, error=failure.message, streamed=True)
        yield sse("error", {"detail": _as_api_error(failure, turn).detail})
        return

    record = AnswerRecord(
        content=said,
        outcome=Message.Outcome.ANSWERED,
        model=model,
        chunks=used,
        prompt_tokens=generation.prompt_tokens,
        completion_tokens=generation.completion_tokens,
        time_to_first_token_ms=first_token_ms,
        streamed=True,
        best_score=best_score,
        searched_question=searched,
    )
    message = await _record_answer(turn, record)
    yield sse("done", _done(turn, message))


def _partial(
    turn: PreparedTurn,
    model: str,
    text: str,
    used: list[RetrievedChunk],
    first_token_ms: int | None,
    searched: str,
) -> AnswerRecord:
    return AnswerRecord(
        content=text,
        outcome=Message.Outcome.PARTIAL,
        model=model,
        chunks=used,
        completion_tokens=len(text.split()),  # the provider's count arrives only at the end
        time_to_first_token_ms=first_token_ms,
        streamed=True,
        searched_question=searched,
    )


async def _shielded(function: Any, *args: Any) -> None:
    """Run `function(*args)` in a thread to completion even if the awaiting task is cancelled."""
    task = asyncio.ensure_future(sync_to_async(releasing_connection(function))(*args))
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(task)


def _done(turn: PreparedTurn, message: Message) -> dict[str, Any]:
    return {
        "chat_id": str(turn.chat_id),
        "message_id": str(message.id),
        "usage": _usage(message.model, message.prompt_tokens, message.completion_tokens),
    }


# --- A chat a person handles (inbox/) ---------------------------------------------------------


def for_person(turn: PreparedTurn) -> dict[str, Any]:
    """The 202 answer: the visitor's stored message; nobody answered it yet."""
    from chat.serializers import MessageSerializer

    with tenant_scope(turn.tenant_id):
        message = Message.objects.get(tenant_id=turn.tenant_id, pk=turn.user_message_id)
    return {"chat_id": str(turn.chat_id), "message": MessageSerializer(message).data, "handling": turn.handling}


async def stream_for_person(turn: PreparedTurn) -> AsyncIterator[str]:
    """The stream form of the same: `sources` (empty) and the v1 `done` naming the stored message,
    with no `delta` — the person's reply arrives on the chat's event channel (GET /v1/chat/{id}/events)."""
    yield sse("sources", {"sources": []})
    yield sse(
        "done", {"chat_id": str(turn.chat_id), "message_id": str(turn.user_message_id), "usage": _usage("", 0, 0)}
    )
