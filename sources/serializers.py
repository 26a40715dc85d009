"""Input and output shapes for sources (api-contract.md, Sources)."""

from __future__ import annotations

from typing import Any

from django.db.models import Manager
from rest_framework import serializers

from minirag.serializer_fields import OptionalBooleanField, StrictCharField
from sources.curated import ANSWER_MAX_CHARS, QUESTION_MAX_CHARS
from sources.models import Authority, CuratedAnswer, RefreshSchedule, Source, SourceType
from sources.selectors import aggregate_status, with_children_totals
from sources.services import source_secrets


class _SourceListSerializer(serializers.ListSerializer):
    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        # The children's totals of the whole page, in one statement instead of one per source.
        sources = list(data.all() if isinstance(data, Manager) else data)
        return super().to_representation(with_children_totals(sources))


class SourceSerializer(serializers.ModelSerializer):
    """A source as the API shows it. Parents (batch groups, sitemaps, crawls) report their
    children's aggregate status and counts; secrets in `config` appear only as `has_<name>`."""

    tenant_id = serializers.UUIDField(read_only=True)
    bot_profile_id = serializers.UUIDField(read_only=True)
    parent_id = serializers.UUIDField(read_only=True, allow_null=True)
    status = serializers.SerializerMethodField()
    config = serializers.SerializerMethodField()
    document_count = serializers.SerializerMethodField()
    chunk_count = serializers.SerializerMethodField()
    children_count = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Source
        fields = [
            "id",
            "tenant_id",
            "bot_profile_id",
            "parent_id",
            "name",
            "description",
            "source_type",
            "status",
            "config",
            "document_count",
            "chunk_count",
            "error_message",
            "is_active",
            "refresh_schedule",
            "last_refreshed_at",
            "children_count",
            "created_at",
            "updated_at",
            "authority",
            "is_group",
            "chunks_done",
            "chunks_total",
            "ocr_pages_done",
            "ocr_pages_total",
            "progress",
            "next_refresh_at",
        ]
        read_only_fields = fields
        list_serializer_class = _SourceListSerializer

    def to_representation(self, instance: Source) -> dict[str, Any]:
        with_children_totals([instance])  # set already when the source came in a list
        return super().to_representation(instance)

    def get_status(self, source: Source) -> str:
        return aggregate_status(source)

    def get_config(self, source: Source) -> dict[str, Any]:
        config = dict(source.config)
        if source.config_secrets_ciphertext:
            for key in source_secrets(source):
                config[f"has_{key}"] = True
        return config

    def get_document_count(self, source: Source) -> int:
        return source.document_count + source.children_document_count

    def get_chunk_count(self, source: Source) -> int:
        return source.chunk_count + source.children_chunk_count

    def get_children_count(self, source: Source) -> int:
        return source.children_count

    def get_progress(self, source: Source) -> float | None:
        """Share of this source's chunks embedded and indexed in the current (or last) run."""
        if not source.chunks_total:
            return None
        return round(source.chunks_done / source.chunks_total, 4)


class _SourceFields(serializers.Serializer):
    name = StrictCharField(max_length=200)
    description = StrictCharField(required=False, allow_blank=True, max_length=10_000, default="")
    source_type = serializers.ChoiceField(choices=SourceType.choices)
    config = serializers.JSONField(required=False, allow_null=True)
    content = StrictCharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    refresh_schedule = serializers.ChoiceField(choices=RefreshSchedule.choices, required=False, allow_null=True)
    authority = serializers.ChoiceField(choices=Authority.choices, required=False, default=Authority.INFORMATIONAL)


class SourceCreateInputSerializer(_SourceFields):
    bot_profile_id = serializers.UUIDField()
    parent_id = serializers.UUIDField(required=False, allow_null=True)


class SourceBatchInputSerializer(serializers.Serializer):
    bot_profile_id = serializers.UUIDField()
    name = StrictCharField(max_length=200)
    description = StrictCharField(required=False, allow_blank=True, max_length=10_000, default="")
    source_type = serializers.ChoiceField(choices=SourceType.choices, required=False, default=SourceType.URL)
    children = _SourceFields(many=True, allow_empty=False, max_length=1000)


class SourceBatchOutputSerializer(serializers.Serializer):
    parent = SourceSerializer()
    children = SourceSerializer(many=True)


class SourceUpdateInputSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200, required=False)
    description = StrictCharField(required=False, allow_blank=True, max_length=10_000)
    config = serializers.JSONField(required=False, allow_null=True)
    content = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    is_active = OptionalBooleanField(required=False)
    refresh_schedule = serializers.ChoiceField(choices=RefreshSchedule.choices, required=False, allow_null=True)
    authority = serializers.ChoiceField(choices=Authority.choices, required=False)


class SourceUploadInputSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=False)
    bot_profile_id = serializers.UUIDField()
    name = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    description = StrictCharField(required=False, allow_blank=True, max_length=10_000, default="")
    parent_id = serializers.UUIDField(required=False, allow_null=True)


class IngestAcceptedSerializer(serializers.Serializer):
    status = serializers.CharField(default="accepted")
    message = serializers.CharField()


class IngestChildrenAcceptedSerializer(IngestAcceptedSerializer):
    enqueued = serializers.IntegerField()


class CuratedAnswerSerializer(serializers.ModelSerializer):
    """A curated answer as the API shows it. Its row is the bot's `qa` source `source_id` (the same
    id), so it is also listed, with its ingestion status, among the bot's sources."""

    tenant_id = serializers.UUIDField(read_only=True)
    bot_profile_id = serializers.UUIDField(read_only=True)
    question = serializers.CharField(read_only=True)
    answer = serializers.CharField(read_only=True)
    message_id = serializers.UUIDField(read_only=True, allow_null=True)
    source_id = serializers.UUIDField(source="pk", read_only=True)
    created_by_name = serializers.CharField(read_only=True, allow_null=True)

    class Meta:
        model = CuratedAnswer
        fields = [
            "id",
            "tenant_id",
            "bot_profile_id",
            "question",
            "answer",
            "message_id",
            "source_id",
            "status",
            "error_message",
            "created_at",
            "updated_at",
            "created_by_name",
        ]
        read_only_fields = fields


class CuratedAnswerCreateInputSerializer(serializers.Serializer):
    """With `message_id` (an answer of the bot), the question defaults to the message the visitor
    sent before it, and the bot to the chat's."""

    bot_profile_id = serializers.UUIDField(required=False, allow_null=True)
    question = StrictCharField(required=False, max_length=QUESTION_MAX_CHARS)
    answer = StrictCharField(max_length=ANSWER_MAX_CHARS)
    message_id = serializers.UUIDField(required=False, allow_null=True)


class CuratedAnswerUpdateInputSerializer(serializers.Serializer):
    question = StrictCharField(required=False, max_length=QUESTION_MAX_CHARS)
    answer = StrictCharField(required=False, max_length=ANSWER_MAX_CHARS)
