"""The fake provider, proved through LiteLLM itself: if LiteLLM's OpenAI, Azure and Ollama clients accept its
answers and map its scripted failures, tests of the provider layer can trust it as a stand-in.

No database and no network beyond loopback; LiteLLM is called directly, outside the model gateway (and so
outside its egress policy, which only judges connections made inside `model_egress()`).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import httpx
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # or importing LiteLLM fetches a price list

import litellm  # after the environment above

from providers.tests.fake_provider import DEFAULT_REPLY, FakeProvider, embedding_of

# As the model gateway does: every provider's HTTP goes through httpx.
litellm.disable_aiohttp_transport = True
litellm.suppress_debug_info = True

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello to me"},
]
PROMPT_WORDS = 6  # of MESSAGES


def openai_chat(fake: FakeProvider, **kwargs: Any) -> Any:
    return litellm.completion(
        model="openai/fake-chat", api_base=fake.url + "/v1", api_key="sk-test", messages=MESSAGES, **kwargs
    )


def streamed(response: Any) -> tuple[str, Any]:
    """The text of a LiteLLM stream and the usage its last chunks carried."""
    text, usage = "", None
    for chunk in response:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        usage = getattr(chunk, "usage", None) or usage
    return text, usage


def test_openai_chat_completion(fake_provider: FakeProvider) -> None:
    fake_provider.reply = "Hello from the fake."

    response = openai_chat(fake_provider)

    assert response.choices[0].message.content == "Hello from the fake."
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (PROMPT_WORDS, 4)
    [request] = fake_provider.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.model == "fake-chat"
    assert request.body["messages"] == MESSAGES


def test_openai_chat_streamed_word_by_word_with_usage(fake_provider: FakeProvider) -> None:
    fake_provider.reply = "Streamed in five small words."

    text, usage = streamed(openai_chat(fake_provider, stream=True, stream_options={"include_usage": True}))

    assert text == "Streamed in five small words."
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (PROMPT_WORDS, 5, PROMPT_WORDS + 5)
    [request] = fake_provider.requests
    assert request.body["stream"] is True


def test_openai_embeddings(fake_provider: FakeProvider) -> None:
    fake_provider.dimensions = 16

    response = litellm.embedding(
        model="openai/fake-embed", api_base=fake_provider.url + "/v1", api_key="sk-test", input=["a", "b"]
    )

    vectors = [item["embedding"] for item in response.data]
    assert [len(vector) for vector in vectors] == [16, 16]
    assert vectors[0] == pytest.approx(embedding_of("a", 16))
    assert vectors[0] != pytest.approx(vectors[1])
    assert math.isclose(math.fsum(value * value for value in vectors[0]), 1.0)
    assert response.usage.prompt_tokens == 2
    [request] = fake_provider.requests
    assert (request.path, request.model, request.body["input"]) == ("/v1/embeddings", "fake-embed", ["a", "b"])


def test_azure_chat_completion(fake_provider: FakeProvider) -> None:
    response = litellm.completion(
        model="azure/my-deployment",
        api_base=fake_provider.url,
        api_version="2024-06-01",
        api_key="k",
        messages=MESSAGES,
    )

    assert response.choices[0].message.content == DEFAULT_REPLY
    [request] = fake_provider.requests
    assert request.path == "/openai/deployments/my-deployment/chat/completions"
    assert request.query["api-version"] == "2024-06-01"
    assert request.headers["api-key"] == "k"
    assert request.model == "my-deployment"


def test_azure_embeddings(fake_provider: FakeProvider) -> None:
    response = litellm.embedding(
        model="azure/my-embedder", api_base=fake_provider.url, api_version="2024-06-01", api_key="k", input=["a", "b"]
    )

    # Azure's SDK asks for base64 (float32): the vectors survive the round trip to float32 precision.
    assert [item["embedding"] for item in response.data] == [
        pytest.approx(embedding_of(text, 8), rel=1e-6) for text in ("a", "b")
    ]
    [request] = fake_provider.requests
    assert request.path == "/openai/deployments/my-embedder/embeddings"
    assert request.query_string == "api-version=2024-06-01"


@pytest.mark.parametrize(("model", "path"), [("ollama/llama3", "/api/generate"), ("ollama_chat/llama3", "/api/chat")])
@pytest.mark.parametrize("stream", [False, True])
def test_ollama_completion(fake_provider: FakeProvider, model: str, path: str, stream: bool) -> None:
    fake_provider.reply = "Local and fake."

    response = litellm.completion(
        model=model,
        api_base=fake_provider.url,
        messages=MESSAGES,
        stream=stream,
        **({"stream_options": {"include_usage": True}} if stream else {}),
    )

    text, usage = streamed(response) if stream else (response.choices[0].message.content, response.usage)
    assert text == "Local and fake."
    assert usage.completion_tokens == 3
    [request] = fake_provider.requests
    assert (request.path, request.model, request.body["stream"]) == (path, "llama3", stream)


def test_ollama_embeddings(fake_provider: FakeProvider) -> None:
    response = litellm.embedding(model="ollama/nomic-embed-text", api_base=fake_provider.url, input=["one", "two"])

    assert [item["embedding"] for item in response.data] == [embedding_of("one", 8), embedding_of("two", 8)]
    [request] = fake_provider.requests
    assert (request.path, request.model) == ("/api/embed", "nomic-embed-text")


def test_the_other_routes_answer_in_their_api_shape(fake_provider: FakeProvider) -> None:
    """Model lists and the older Ollama embedding endpoint, which clients call outside chat and embedding."""
    fake_provider.models = ["llama3:latest"]
    with httpx.Client(base_url=fake_provider.url) as client:
        assert client.get("/v1/models").json()["data"][0]["id"] == "llama3:latest"
        assert client.get("/api/tags").json()["models"][0]["name"] == "llama3:latest"
        assert client.post("/api/show", json={"name": "llama3"}).json()["model_info"]
        single = client.post("/api/embeddings", json={"model": "m", "prompt": "hi"}).json()
        assert single == {"embedding": embedding_of("hi", 8)}
        unknown = client.post("/v1/unknown", json={})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["message"] == "Invalid URL (POST /v1/unknown)"
        assert client.post("/v1/chat/completions", content=b"{not json").status_code == 400
    assert fake_provider.requests[-1].raw_body == b"{not json"


def test_extra_headers_reach_the_provider(fake_provider: FakeProvider) -> None:
    openai_chat(fake_provider, extra_headers={"X-Team": "alpha"})

    assert fake_provider.requests[0].headers["x-team"] == "alpha"


@pytest.mark.parametrize(
    ("status", "exception"), [(429, litellm.RateLimitError), (503, litellm.ServiceUnavailableError)]
)
@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda fake: openai_chat(fake, max_retries=0, num_retries=0), id="openai"),
        pytest.param(
            lambda fake: litellm.completion(
                model="azure/my-deployment",
                api_base=fake.url,
                api_version="2024-06-01",
                api_key="k",
                messages=MESSAGES,
                max_retries=0,
                num_retries=0,
            ),
            id="azure",
        ),
        pytest.param(
            lambda fake: litellm.completion(
                model="ollama_chat/llama3", api_base=fake.url, messages=MESSAGES, max_retries=0, num_retries=0
            ),
            id="ollama",
        ),
    ],
)
def test_scripted_failure_is_mapped_by_litellm(
    fake_provider: FakeProvider, status: int, exception: type[Exception], call: Any
) -> None:
    fake_provider.fail_next(status)

    with pytest.raises(exception):
        call(fake_provider)

    assert len(fake_provider.requests) == 1  # not retried
    assert call(fake_provider).choices[0].message.content == DEFAULT_REPLY  # the failure was used up


def test_failures_can_be_scripted_for_one_path_and_several_times(fake_provider: FakeProvider) -> None:
    fake_provider.fail_next(429, times=2, path="chat")

    embedded = litellm.embedding(
        model="openai/fake-embed", api_base=fake_provider.url + "/v1", api_key="sk-test", input=["a"]
    )
    assert len(embedded.data) == 1
    for _ in range(2):
        with pytest.raises(litellm.RateLimitError):
            openai_chat(fake_provider, max_retries=0, num_retries=0)
    assert openai_chat(fake_provider, max_retries=0).choices[0].message.content == DEFAULT_REPLY
    assert len(fake_provider.requests) == 4
    with httpx.Client(base_url=fake_provider.url) as client:
        fake_provider.fail_next(429)
        refused = client.post("/v1/embeddings", json={"input": "a"})
        assert (refused.status_code, refused.headers["retry-after"]) == (429, "0")
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert client.post("/v1/embeddings", json={"input": "a"}).status_code == 200


def test_delay_provokes_a_client_timeout(fake_provider: FakeProvider) -> None:
    fake_provider.delay_next(2)
    started = time.monotonic()

    with pytest.raises(litellm.Timeout):
        openai_chat(fake_provider, timeout=0.5, max_retries=0, num_retries=0)

    assert time.monotonic() - started < 1.5
    assert openai_chat(fake_provider, timeout=5).choices[0].message.content == DEFAULT_REPLY


def test_reset_forgets_requests_and_scripts(fake_provider: FakeProvider) -> None:
    openai_chat(fake_provider)
    fake_provider.fail_next(500)
    fake_provider.delay_next(5)

    fake_provider.reset()

    assert fake_provider.requests == []
    assert openai_chat(fake_provider, timeout=2, max_retries=0).choices[0].message.content == DEFAULT_REPLY
