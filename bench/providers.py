"""Benchmark-only model stand-ins, registered as the LiteLLM provider `bench`:

* `bench/instant` answers at once (a zero-latency LLM: what is left is MiniRAG's own time);
* `bench/slow` streams `BENCH_WORDS` words, one every `BENCH_WORD_DELAY` seconds (a long answer
  that keeps a connection open, for concurrency).
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


def _words(model: str) -> list[str]:
    if model.endswith("slow"):
        return [f"word{n} " for n in range(int(os.environ.get("BENCH_WORDS", "30")))]
    return [f"{word} " for word in ANSWER.split()]


class BenchModel(CustomLLM):
    def completion(self, model: str, *args: Any, **kwargs: Any) -> ModelResponse:
        response = ModelResponse()
        response.choices[0].message.content = "".join(_words(model)).strip()  # type: ignore[union-attr]
        response.model = f"bench/{model}"
        return response

    async def acompletion(self, model: str, *args: Any, **kwargs: Any) -> ModelResponse:
        return self.completion(model)

    def astreaming(self, model: str, *args: Any, **kwargs: Any) -> Any:
        delay = float(os.environ.get("BENCH_WORD_DELAY", "0.1")) if model.endswith("slow") else 0.0

        async def chunks() -> Any:
            words = _words(model)
            for index, word in enumerate(words):
                if delay:
                    await asyncio.sleep(delay)
                yield {
                    "text": word,
                    "is_finished": index == len(words) - 1,
                    "finish_reason": "stop" if index == len(words) - 1 else "",
                    "usage": None,
                    "index": 0,
                }

        return chunks()


def register() -> None:
    if not any(entry["provider"] == "bench" for entry in litellm.custom_provider_map):
        litellm.custom_provider_map.append({"provider": "bench", "custom_handler": BenchModel()})
        custom_llm_setup()
