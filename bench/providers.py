"""Benchmark-only model stand-ins, registered as the LiteLLM provider `bench`:

* `bench/instant` answers at once (a zero-latency LLM: what is left is MiniRAG's own time);
* `bench/slow` streams `BENCH_WORDS` words, one every `BENCH_WORD_DELAY` seconds (a long answer
  that keeps a connection open, for concurrency);
* `bench/fixed` is a fixed-latency model (bench/burst.py): its first token after
  `BENCH_FIRST_TOKEN_DELAY` seconds, then `BENCH_WORDS` - 1 more, one every `BENCH_WORD_DELAY`
  seconds, whatever the load — a provider on the network, whose time is not this machine's CPU.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import litellm
from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import ModelResponse
from litellm.utils import custom_llm_setup

ANSWER = "Orders ship within two working days [1]."


def _long(model: str) -> bool:
    return model.endswith(("slow", "fixed"))


def _word_count(model: str) -> int:
    return int(os.environ.get("BENCH_WORDS", "30")) if _long(model) else len(ANSWER.split())


def _word(model: str, index: int) -> str:
    return f"word{index} " if _long(model) else f"{ANSWER.split()[index]} "


def _words(model: str) -> list[str]:
    return [_word(model, index) for index in range(_word_count(model))]


def _usage(count: int) -> dict[str, int]:
    return {"prompt_tokens": 500, "completion_tokens": count, "total_tokens": 500 + count}


class BenchModel(CustomLLM):
    def completion(self, model: str, *args: Any, **kwargs: Any) -> ModelResponse:
        response = ModelResponse()
        response.choices[0].message.content = "".join(_words(model)).strip()  # type: ignore[union-attr]
        response.model = f"bench/{model}"
        return response

    async def acompletion(self, model: str, *args: Any, **kwargs: Any) -> ModelResponse:
        if model.endswith("fixed"):  # the whole answer takes as long as its stream would
            words = len(_words(model))
            await asyncio.sleep(
                float(os.environ.get("BENCH_FIRST_TOKEN_DELAY", "0.5"))
                + max(0, words - 1) * float(os.environ.get("BENCH_WORD_DELAY", "0.1"))
            )
        return self.completion(model)

    def astreaming(self, model: str, *args: Any, **kwargs: Any) -> Any:
        delay = float(os.environ.get("BENCH_WORD_DELAY", "0.1")) if model.endswith(("slow", "fixed")) else 0.0
        first_delay = float(os.environ.get("BENCH_FIRST_TOKEN_DELAY", "0.5")) if model.endswith("fixed") else delay

        async def chunks() -> Any:
            # Word by word, made as they are sent: a long answer's list of words, held for the whole
            # stream, would count as the server's memory per open stream (bench/streams.py).
            count = _word_count(model)
            for index in range(count):
                pause = first_delay if index == 0 else delay
                if pause:
                    await asyncio.sleep(pause)
                last = index == count - 1
                yield {
                    "text": _word(model, index),
                    "is_finished": last,
                    "finish_reason": "stop" if last else "",
                    # Every bench model reports its usage with its last chunk, as providers do when
                    # asked (stream_options.include_usage): the gateway then counts no tokens itself.
                    "usage": _usage(count) if last else None,
                    "index": 0,
                }

        return chunks()


def register() -> None:
    if not any(entry["provider"] == "bench" for entry in litellm.custom_provider_map):
        litellm.custom_provider_map.append({"provider": "bench", "custom_handler": BenchModel()})
        custom_llm_setup()
