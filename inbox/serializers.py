"""Input and output shapes of the hand-off routes (docs/chat.md, "Talking to a person")."""

from __future__ import annotations

from rest_framework import serializers

from chat.serializers import MAX_MESSAGE_CHARS, ChatSerializer
from minirag.serializer_fields import StrictCharField


class HandoffInputSerializer(serializers.Serializer):
    email = serializers.EmailField(
        required=False,
        allow_blank=True,
        max_length=254,
        help_text="Where the visitor wants the answer when nobody is available now; kept on the chat.",
    )


class HandoffSerializer(serializers.Serializer):
    chat = ChatSerializer()
    available = serializers.BooleanField(
        help_text="Whether an operator is online now, within the bot's office hours: someone should answer soon."
    )
    within_office_hours = serializers.BooleanField(help_text="Always true for a bot without office hours.")
    next_available_at = serializers.DateTimeField(
        allow_null=True,
        help_text="Outside office hours, when they open next (UTC): when someone will answer. Null otherwise.",
    )
    ask_for_email = serializers.BooleanField(
        help_text="Nobody is available and the chat has no contact email yet: ask the visitor for one."
    )


class ReplyInputSerializer(serializers.Serializer):
    content = StrictCharField(min_length=1, max_length=MAX_MESSAGE_CHARS, trim_whitespace=False)

    def validate_content(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("The message is empty.")
        return value


class PresenceSerializer(serializers.Serializer):
    online_for_seconds = serializers.IntegerField(help_text="How long this ping keeps you online.")
    operators_online = serializers.IntegerField(help_text="Operators of the workspace online now, you included.")


class InboxStatusSerializer(serializers.Serializer):
    waiting = serializers.IntegerField(help_text="Chats waiting for a person (handling needs_human).")
    handled = serializers.IntegerField(help_text="Chats a person handles now (handling human).")
    operators_online = serializers.IntegerField()
