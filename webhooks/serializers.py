"""Input and output shapes of the webhooks API."""

from __future__ import annotations

from rest_framework import serializers

from minirag.serializer_fields import OptionalBooleanField, StrictCharField
from webhooks.models import SUBSCRIBABLE_EVENTS, DeliveryState, Webhook, WebhookDelivery


class WebhookSerializer(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True)
    events = serializers.ListField(child=serializers.CharField(), read_only=True)
    has_secret = serializers.SerializerMethodField()

    def get_has_secret(self, webhook: Webhook) -> bool:
        return bool(webhook.secret_ciphertext)

    class Meta:
        model = Webhook
        fields = [
            "id",
            "tenant_id",
            "url",
            "events",
            "is_active",
            "description",
            "has_secret",
            "created_at",
            "updated_at",
            # Extensions: the endpoint's health.
            "failure_streak",
            "failing_since",
            "last_success_at",
            "last_failure_at",
            "disabled_reason",
            "disabled_at",
        ]
        read_only_fields = fields


class WebhookWithSecretSerializer(WebhookSerializer):
    secret = serializers.CharField(read_only=True, help_text="The signing secret, shown once; store it now.")

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class DeliveryAttemptSerializer(serializers.Serializer):
    attempt = serializers.IntegerField()
    at = serializers.DateTimeField()
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField()
    error = serializers.CharField(allow_blank=True)
    trigger = serializers.ChoiceField(choices=["scheduled", "test"])


class WebhookDeliverySerializer(serializers.ModelSerializer):
    webhook_id = serializers.UUIDField(read_only=True)
    payload = serializers.JSONField(read_only=True)
    attempts = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "webhook_id",
            "event",
            "payload",
            "state",
            "attempt_count",
            "next_attempt_at",
            "last_status_code",
            "last_latency_ms",
            "last_response_body",
            "last_error",
            "attempts",
            "delivered_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class WebhookTestResultSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField()
    error = serializers.CharField(allow_blank=True, help_text="Why it failed; empty on success.")
    delivery_id = serializers.UUIDField()


# --- Input ------------------------------------------------------------------------------------


def _events_field(**kwargs: object) -> serializers.ListField:
    # Names are checked by the service, whose 422 lists the valid ones.
    return serializers.ListField(
        child=StrictCharField(max_length=50), help_text=f"Any of: {', '.join(SUBSCRIBABLE_EVENTS)}.", **kwargs
    )


class WebhookCreateInputSerializer(serializers.Serializer):
    url = StrictCharField(max_length=2048)
    events = _events_field()
    description = StrictCharField(required=False, allow_blank=True, default="", max_length=2000)
    secret = StrictCharField(
        required=False, allow_null=True, allow_blank=True, trim_whitespace=False, help_text="Generated when absent."
    )


class WebhookUpdateInputSerializer(serializers.Serializer):
    url = StrictCharField(max_length=2048, required=False)
    events = _events_field(required=False)
    description = StrictCharField(required=False, allow_blank=True, max_length=2000)
    is_active = OptionalBooleanField(required=False)


class WebhookRotateSecretInputSerializer(serializers.Serializer):
    secret = StrictCharField(
        required=False, allow_null=True, allow_blank=True, trim_whitespace=False, help_text="Generated when absent."
    )


class DeliveryFilterSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=DeliveryState.choices, required=False)
    event = StrictCharField(required=False, max_length=50)
