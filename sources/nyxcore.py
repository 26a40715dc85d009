"""Client of an external `nyxcore` hybrid-search service (api-contract.md, "External nyxcore
sources"). Ingesting such a source is a connection check; searching happens at chat time.
Every call goes through the SSRF guard with the source's encrypted bearer token."""

from __future__ import annotations

from dataclasses import dataclass

from minirag.safe_http import FetchError, afetch, fetch
from sources.extraction import ExtractionError
from sources.models import Source
from sources.services import source_secrets

CHECK_TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class ConnectionSummary:
    documents: int
    chunks: int


def _headers(source: Source) -> dict[str, str]:
    return {"Authorization": f"Bearer {source_secrets(source).get('api_token', '')}", "Accept": "application/json"}


def check_connection(source: Source) -> ConnectionSummary:
    """`GET {base_url}/api/v1/rag/documents`: ready documents and their chunks, or a readable
    error (FetchError says whether retrying can help; a malformed answer cannot)."""
    url = f"{source.config['base_url']}/api/v1/rag/documents"
    response = fetch(
        url, headers=_headers(source), timeout=CHECK_TIMEOUT_SECONDS, allowed_content_types=["application/json"]
    )
    try:
        body = response.json()
    except FetchError as exc:
        raise ExtractionError(f"The search service answered with invalid JSON: {exc.message}") from None
    if not isinstance(body, dict) or body.get("ok") is not True or not isinstance(body.get("documents"), list):
        raise ExtractionError('The search service\'s answer is not the expected {"ok": true, "documents": [...]}.')
    ready = [doc for doc in body["documents"] if isinstance(doc, dict) and doc.get("status") == "ready"]
    chunks = sum(int(doc.get("chunkCount") or 0) for doc in ready if str(doc.get("chunkCount") or 0).isdigit())
    return ConnectionSummary(documents=len(ready), chunks=chunks)


# --- Chat-time search --------------------------------------------------------------------------

SEARCH_TIMEOUT_SECONDS = 8
AUTHORITIES = ("mandatory", "guideline", "informational")


@dataclass(frozen=True)
class SearchTarget:
    """What a chat turn needs to query one nyxcore source (secrets already decrypted)."""

    source_id: str
    name: str
    base_url: str
    api_token: str
    limit: int = 10
    authority: list[str] | None = None


@dataclass(frozen=True)
class SearchHit:
    chunk_id: str
    content: str
    score: float
    heading: str = ""
    filename: str = ""
    authority: str = "informational"


async def search(target: SearchTarget, query: str) -> list[SearchHit]:
    """`POST {base_url}/api/v1/rag/search`. Raises FetchError / ExtractionError on any failure;
    the caller skips this source then (a failing service never breaks a turn)."""
    body: dict[str, object] = {"query": query, "limit": target.limit}
    if target.authority:
        body["authority"] = target.authority
    response = await afetch(
        f"{target.base_url}/api/v1/rag/search",
        method="POST",
        json=body,
        headers={"Authorization": f"Bearer {target.api_token}", "Accept": "application/json"},
        timeout=SEARCH_TIMEOUT_SECONDS,
        allowed_content_types=["application/json"],
    )
    payload = response.json()
    if not isinstance(payload, dict) or payload.get("ok") is not True or not isinstance(payload.get("results"), list):
        raise ExtractionError('The search service\'s answer is not the expected {"ok": true, "results": [...]}.')
    hits = []
    for item in payload["results"][: target.limit]:
        if not isinstance(item, dict) or not str(item.get("content") or "").strip():
            continue
        authority = item.get("authority") if item.get("authority") in AUTHORITIES else "informational"
        try:
            score = float(item.get("score") or 0.0)
        except (TypeError, ValueError):
            score = 0.0
        hits.append(
            SearchHit(
                chunk_id=str(item.get("chunkId") or ""),
                content=str(item["content"]),
                score=score,
                heading=str(item.get("heading") or ""),
                filename=str(item.get("filename") or ""),
                authority=authority,
            )
        )
    return hits
