"""Client of an external `nyxcore` hybrid-search service (api-contract.md, "External nyxcore
sources"). Ingesting such a source is a connection check; searching happens at chat time.
Every call goes through the SSRF guard with the source's encrypted bearer token."""

from __future__ import annotations

from dataclasses import dataclass

from minirag.safe_http import FetchError, fetch
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
