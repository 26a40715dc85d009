"""Knowledge sources, the documents they yield, and the chunks that are embedded and indexed.

A `Source` is what a tenant points a bot at: a text, an uploaded file, a URL, a sitemap or a crawl
root (whose discovered pages become child URL sources), a batch group, an external search
service, or a curated answer (a question and the answer an operator wrote for it). Ingestion turns
a source into `Document`s and `Chunk`s; each chunk's id is also its point id in Qdrant and is
derived from its content, so re-ingesting is a diff.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from tenants.tenancy import TenantOwnedModel, TenantScopedManager


class SourceType(models.TextChoices):
    TEXT = "text", "Text"
    UPLOAD = "upload", "Uploaded file"
    URL = "url", "Web page"
    SITEMAP = "sitemap", "Sitemap"
    CRAWL = "crawl", "Site crawl"
    NYXCORE = "nyxcore", "External search (nyxcore)"
    QA = "qa", "Curated answer"


class SourceStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    ERROR = "error", "Error"


IN_FLIGHT_STATUSES = (SourceStatus.QUEUED, SourceStatus.PROCESSING)


class RefreshSchedule(models.TextChoices):
    NONE = "none", "Never"
    HOURLY = "hourly", "Hourly"
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"


class Authority(models.TextChoices):
    """How binding a source's content is; mandatory and guideline chunks lead the prompt."""

    MANDATORY = "mandatory", "Mandatory"
    GUIDELINE = "guideline", "Guideline"
    INFORMATIONAL = "informational", "Informational"


class Source(TenantOwnedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    bot_profile = models.ForeignKey("bots.BotProfile", on_delete=models.CASCADE, related_name="sources")
    parent = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="children")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    source_type = models.CharField(max_length=20, choices=SourceType.choices)
    # A batch parent: a container whose ingestion is its children's (it has no content of its own).
    is_group = models.BooleanField(default=False)
    config = models.JSONField(default=dict, blank=True)
    # Fernet ciphertext of the secret part of `config` (e.g. an external service's API token).
    config_secrets_ciphertext = models.TextField(blank=True, default="", editable=False)
    content = models.TextField(blank=True, default="")
    authority = models.CharField(max_length=20, choices=Authority.choices, default=Authority.INFORMATIONAL)
    is_active = models.BooleanField(default=True)

    status = models.CharField(max_length=20, choices=SourceStatus.choices, default=SourceStatus.PENDING)
    error_message = models.TextField(blank=True, default="")
    document_count = models.PositiveIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    chunks_total = models.PositiveIntegerField(default=0)
    # Progress of OCR (scanned PDF pages, images) in the current or last run, which comes before
    # chunking and can take minutes: pages read so far, of those to read.
    ocr_pages_done = models.PositiveIntegerField(default=0)
    ocr_pages_total = models.PositiveIntegerField(default=0)

    refresh_schedule = models.CharField(max_length=10, choices=RefreshSchedule.choices, default=RefreshSchedule.NONE)
    next_refresh_at = models.DateTimeField(null=True, blank=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)

    # Bookkeeping of the current ingestion run: which run owns the source (so a stale worker can
    # never overwrite a newer run's results), when it last showed signs of life, and how many
    # times in a row it had to be started.
    ingest_run_id = models.UUIDField(null=True, blank=True, editable=False)
    ingest_attempt = models.PositiveSmallIntegerField(default=0, editable=False)
    queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    # True from a run's first vector write until its cleanup: if still set when the next run
    # starts, the previous one died in between and may have left points to sweep.
    index_dirty = models.BooleanField(default=False, editable=False)
    # A sitemap, crawl or batch parent whose run finished discovering: its webhook event is sent
    # once its pages have all finished (see lifecycle._announce_parent_if_settled).
    children_event_pending = models.BooleanField(default=False, editable=False)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "bot_profile", "is_active"]),
            models.Index(fields=["tenant", "parent"]),
            models.Index(fields=["status", "heartbeat_at"]),
            models.Index(fields=["next_refresh_at"]),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_in_flight(self) -> bool:
        return self.status in IN_FLIGHT_STATUSES


class _CuratedAnswers:
    """Only the sources that are curated answers (mixed into both managers of the proxy below)."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(source_type=SourceType.QA)  # type: ignore[misc]


class CuratedAnswerManager(_CuratedAnswers, TenantScopedManager):
    pass


class AllTenantsCuratedAnswerManager(_CuratedAnswers, models.Manager):
    pass


class CuratedAnswer(Source):
    """A curated answer: the answer an operator wrote for a question (usually one a bot refused or
    answered wrongly), kept as a `qa` source of the bot with `mandatory` authority, so that it is
    searched and cited like any other source and binds the bot's answers (sources/curated.py).

    The question is `config["question"]` (with `config["message_id"]`, the answer it corrects, and
    `config["created_by_name"]`); the answer is `content`; the source's name is the question."""

    objects = CuratedAnswerManager()
    all_tenants = AllTenantsCuratedAnswerManager()

    class Meta:
        proxy = True
        ordering = ["-created_at"]
        verbose_name = "curated answer"

    @property
    def question(self) -> str:
        return str((self.config or {}).get("question", ""))

    @property
    def answer(self) -> str:
        return self.content

    @property
    def message_id(self) -> str | None:
        return (self.config or {}).get("message_id")

    @property
    def created_by_name(self) -> str | None:
        return (self.config or {}).get("created_by_name") or None


class SourceFile(TenantOwnedModel):
    """The bytes of an uploaded file, kept so the source can be re-ingested (e.g. after its bot's
    chunking settings change) without asking for the file again. Its own table, so listing
    sources never loads file contents."""

    source = models.OneToOneField(Source, on_delete=models.CASCADE, primary_key=True, related_name="file")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100, blank=True, default="")
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    data = models.BinaryField()
    uploaded_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return self.filename


class Document(TenantOwnedModel):
    """One extracted text of a source (a page, a file), as last ingested."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=500, blank=True, default="")
    url = models.URLField(max_length=2048, blank=True, default="")
    mime_type = models.CharField(max_length=100, blank=True, default="")
    content_hash = models.CharField(max_length=64)
    char_count = models.PositiveIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.title or self.url or str(self.id)


class Chunk(TenantOwnedModel):
    """A piece of a document. `id` is the Qdrant point id: UUIDv5 of (source, content hash,
    occurrence), so the same text always gets the same id and its stored vector is reused."""

    id = models.UUIDField(primary_key=True, editable=False)
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="chunks")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    chunk_index = models.PositiveIntegerField()
    content = models.TextField()
    content_hash = models.CharField(max_length=64)
    embedding_model = models.CharField(max_length=200)
    # float32 little-endian; lets re-ingestion and re-indexing reuse vectors without the provider.
    embedding = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["source", "chunk_index"]
        indexes = [models.Index(fields=["source", "chunk_index"])]

    def __str__(self) -> str:
        return f"{self.source_id}#{self.chunk_index}"
