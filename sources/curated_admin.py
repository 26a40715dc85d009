"""Dashboard pages for curated answers: the right answers the tenant's staff teach their bots.

Reached from a bot's answer in a chat's transcript (*Write the right answer*, `?message=<id>`: the
question and the bot come from the chat, the bot's answer is shown for reference) or from a
question on the Usage page's unanswered list (`?bot=<id>&question=<text>`). Saving goes through
sources/curated.py, like `POST /v1/curated-answers`: the answer becomes a mandatory source of the
bot, ingested at once. Removing one deletes it and its vectors.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from chat.models import Message
from minirag.dashboard.model_admin import (
    ADD,
    CHANGE,
    DELETE,
    VIEW,
    ServiceForm,
    TenantModelAdmin,
    acting_tenant,
    status_badge,
)
from minirag.lookups import parse_uuid
from sources.admin import STATUS_TONES, BotChoiceField
from sources.curated import (
    ANSWER_MAX_CHARS,
    QUESTION_MAX_CHARS,
    curated_answer_create,
    curated_answer_delete,
    curated_answer_update,
    question_before,
)
from sources.models import CuratedAnswer, SourceStatus
from tenants.models import Tenant
from tenants.tenancy import tenant_scope

# Service error keys → the form field that holds that value.
ERROR_FIELDS = {"bot_profile_id": "bot_profile", "message_id": "message"}


def corrected_message(message_id: Any) -> Message | None:
    """The bot's answer a new curated answer corrects, if the dashboard user may see it (their
    scope decides: a tenant's staff reach only their tenant's chats)."""
    parsed = parse_uuid(message_id)
    if parsed is None:
        return None
    return Message.objects.filter(pk=parsed, role=Message.Role.ASSISTANT).select_related("chat__bot_profile").first()


class CuratedAnswerForm(ServiceForm):
    question = forms.CharField(
        max_length=QUESTION_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
        help_text="The question as visitors ask it. Questions worded differently but about the same thing find "
        "this answer too.",
    )
    answer = forms.CharField(
        max_length=ANSWER_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80}),
        help_text="What the bot should answer. The bot quotes it, cites it, and follows it before anything else it "
        "knows.",
    )
    error_fields = ERROR_FIELDS


class CuratedAnswerAddForm(CuratedAnswerForm):
    """A new curated answer for the chosen bot; `message` (hidden) is the bot's answer it corrects."""

    message = forms.ModelChoiceField(
        queryset=Message.objects.filter(role=Message.Role.ASSISTANT),
        required=False,
        widget=forms.HiddenInput,
    )
    original_answer = forms.CharField(
        required=False,
        disabled=True,
        label="What the bot answered",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text="For reference; it is not changed.",
    )

    class Meta:
        model = CuratedAnswer
        fields = ["bot_profile"]
        field_classes = {"bot_profile": BotChoiceField}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        bots = self.fields["bot_profile"]
        bots.queryset = bots.queryset.select_related("tenant").order_by("tenant__name", "name")
        bots.show_tenant = self.dashboard_request.user.tenant_id is None
        bots.help_text = "The bot that learns the answer."
        corrected = corrected_message(self.data.get("message") or self.initial.get("message"))
        if corrected is None:
            del self.fields["original_answer"]
        else:
            self.fields["original_answer"].initial = corrected.content

    def acting_tenant(self) -> Tenant | None:
        if self.dashboard_request.user.tenant_id is not None:
            return super().acting_tenant()
        bot = self.cleaned_data.get("bot_profile")
        return bot.tenant if bot is not None else None

    def perform(self, tenant: Tenant) -> CuratedAnswer:
        data = self.cleaned_data
        user = self.dashboard_request.user
        return curated_answer_create(
            tenant=tenant,
            bot_profile=data["bot_profile"],
            question=data["question"],
            answer=data["answer"],
            message=data.get("message"),
            created_by_name=user.display_name or user.email,
        )


class CuratedAnswerChangeForm(CuratedAnswerForm):
    class Meta:
        model = CuratedAnswer
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["question"].initial = self.instance.question
        self.fields["answer"].initial = self.instance.answer

    def perform(self, tenant: Tenant) -> CuratedAnswer:
        return curated_answer_update(
            tenant=tenant,
            curated=self.instance,
            question=self.cleaned_data["question"],
            answer=self.cleaned_data["answer"],
        )


@admin.register(CuratedAnswer)
class CuratedAnswerAdmin(TenantModelAdmin):
    """Each row is a `qa` source of its bot (also listed under Sources); removing one deletes it."""

    operations = frozenset({VIEW, ADD, CHANGE, DELETE})
    list_display = ["question_column", "answer_preview", "bot_profile", "status_column", "updated_at"]
    list_display_links = ["question_column"]
    list_filter = ["bot_profile", "status"]
    search_fields = ["name", "content"]
    list_select_related = ["tenant", "bot_profile"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "bot_profile",
        "status_column",
        "error_message",
        "corrects",
        "created_by",
        "created_at",
        "updated_at",
    ]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "title": "Write the right answer"}
        return super().add_view(request, form_url, extra_context)

    def get_queryset(self, request: HttpRequest) -> QuerySet[CuratedAnswer]:
        # A curated answer deactivated as a source is no longer part of its bot's knowledge.
        return super().get_queryset(request).filter(is_active=True)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> type:
        kwargs["form"] = CuratedAnswerChangeForm if obj is not None else CuratedAnswerAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[tuple[str | None, dict]]:
        if obj is None:
            fields = ["bot_profile", "question", "answer", "message"]
            if corrected_message(request.POST.get("message") or request.GET.get("message")) is not None:
                fields.insert(1, "original_answer")
            return [(None, {"fields": fields})]
        return [
            (None, {"fields": ["question", "answer"]}),
            ("About it", {"fields": ["bot_profile", "status_column", "error_message", "corrects"]}),
            ("Record", {"fields": ["created_by", "created_at", "updated_at"], "classes": ["collapse"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return list(super().get_readonly_fields(request, obj)) if obj is not None else []

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        """Prefilled from the bot's answer being corrected (`?message=`), or from an unanswered
        question (`?bot=&question=`)."""
        message = corrected_message(request.GET.get("message"))
        if message is not None:
            return {
                "message": message.pk,
                "bot_profile": message.chat.bot_profile_id,
                "question": question_before(message),
            }
        initial: dict[str, Any] = {"question": request.GET.get("question", "")[:QUESTION_MAX_CHARS]}
        bot = parse_uuid(request.GET.get("bot"))
        if bot is not None:
            initial["bot_profile"] = bot
        return initial

    # --- Columns and read-only fields ---------------------------------------------------------

    @admin.display(description="Question", ordering="name")
    def question_column(self, curated: CuratedAnswer) -> str:
        return Truncator(curated.question).chars(120)

    @admin.display(description="Answer")
    def answer_preview(self, curated: CuratedAnswer) -> str:
        return Truncator(curated.answer).chars(120)

    @admin.display(description="Status", ordering="status")
    def status_column(self, curated: CuratedAnswer) -> str:
        status = SourceStatus(curated.status)
        return status_badge(status, status.label, STATUS_TONES[status])

    @admin.display(description="Corrects the answer")
    def corrects(self, curated: CuratedAnswer) -> str:
        message = corrected_message(curated.message_id)
        if message is None:
            return "—"
        chat_url = reverse("admin:chat_chat_change", args=[message.chat_id])
        return format_html('{}<br><a href="{}">Open the chat</a>', Truncator(message.content).chars(300), chat_url)

    @admin.display(description="Written by")
    def created_by(self, curated: CuratedAnswer) -> str:
        return curated.created_by_name or "—"

    # --- Removing: deleted for good, through the service --------------------------------------

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[list[str], dict[str, int], set, list]:
        # Only the answers are listed: their chunks go with them, whatever the user may do to chunks.
        answers = list(objs)
        return [str(curated) for curated in answers], {"curated answers": len(answers)}, set(), []

    def delete_model(self, request: HttpRequest, obj: CuratedAnswer) -> None:
        tenant = acting_tenant(request, obj)
        with tenant_scope(tenant):
            curated_answer_delete(tenant=tenant, curated=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[CuratedAnswer]) -> None:
        for curated in queryset:  # each in its own tenant's scope (an operator may select several tenants')
            self.delete_model(request, curated)
