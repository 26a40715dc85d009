"""The dashboard's inbox (/dashboard/inbox/): the workspace's conversations, live — visitors
waiting for a person first — and one conversation's transcript, where an operator takes the chat
over, answers and hands it back to the bot.

The page is server-rendered and works without scripts (the actions are plain forms);
static/dashboard/inbox.js keeps it live: it holds the inbox's event stream open (which is also what
makes the operator "online" for hand-offs, inbox/presence.py), refreshes the list and the open
transcript from the partial views below when something happens, shows the visitor typing, and
sends the operator's typing signal. The transitions are inbox/services.py's, as for the API.

Who: the tenant's operators (inbox/selectors.py `user_may_operate`: owners, admins, and members
while the workspace lets members read every chat, who log in to this page only). Operators see
every chat of their workspace, so a chat of another workspace is a 404 like a missing one.
Platform operators pick a workspace (?tenant=) and read it; answering is for the workspace's staff.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

from bots.models import BotProfile
from chat import selectors as chat_selectors
from chat.models import Chat, Message
from inbox import services
from inbox.selectors import InboxFilters, inbox_chats, user_may_operate
from inbox.serializers import ReplyInputSerializer
from inbox.views import NOT_AN_OPERATOR
from minirag.dashboard.access import can_use_dashboard
from minirag.dashboard.views import chosen_tenant
from minirag.errors import ApplicationError
from minirag.lookups import parse_uuid
from tenants.models import Tenant
from tenants.tenancy import tenant_scope

FILTER_PARAMS = ("bot", "handling", "outcome", "feedback")
OUTCOME_CHOICES = (("refused", "The bot refused a question"), ("answered", "Every question answered"))
ACTIONS = ("takeover", "release", "reply")


def _workspace(request: HttpRequest) -> tuple[Tenant | None, list[Tenant], bool]:
    """The workspace shown, the workspaces to pick from (platform operators), and whether the
    viewer may answer in it."""
    tenant, tenants = chosen_tenant(request)
    return tenant, tenants, bool(request.user.tenant_id is not None and user_may_operate(request.user))


def _filters(request: HttpRequest, tenant: Tenant) -> InboxFilters:
    """The list's filters from the query string; an unknown value is ignored (shows everything)."""
    bot_id = parse_uuid(request.GET.get("bot"))
    handling = request.GET.get("handling", "")
    outcome = request.GET.get("outcome", "")
    feedback = request.GET.get("feedback", "")
    return InboxFilters(
        bot_profile_id=bot_id if bot_id and BotProfile.objects.filter(tenant=tenant, pk=bot_id).exists() else None,
        handling=handling if handling in Chat.Handling.values else "",
        outcome=outcome if outcome in dict(OUTCOME_CHOICES) else "",
        feedback=feedback if feedback in Message.Feedback.values else "",
    )


def _chat(tenant: Tenant, chat_id: uuid.UUID) -> Chat:
    chat = Chat.objects.filter(tenant=tenant, pk=chat_id).select_related("bot_profile", "assigned_to").first()
    if chat is None:
        raise Http404("No such conversation.")
    return chat


def _list_context(request: HttpRequest, tenant: Tenant, selected: uuid.UUID | None) -> dict[str, Any]:
    filters = _filters(request, tenant)
    chats = inbox_chats(tenant=tenant, filters=filters)
    query = {name: request.GET[name] for name in (*FILTER_PARAMS, "tenant") if request.GET.get(name)}
    return {
        "chats": chats,
        "waiting": sum(chat.handling == Chat.Handling.NEEDS_HUMAN for chat in chats),
        "filters": filters,
        "selected_id": selected,
        "filter_query": urlencode(query),
    }


def _transcript_context(tenant: Tenant, chat: Chat, can_answer: bool, request: HttpRequest) -> dict[str, Any]:
    return {
        "chat": chat,
        "chat_messages": list(chat_selectors.chat_messages(chat=chat)),
        "can_answer": can_answer,
        # Curated answers are written on their own dashboard page, which members who only answer
        # visitors cannot open.
        "can_teach": can_use_dashboard(request.user),
        "is_mine": chat.assigned_to_id == request.user.pk,
    }


def open_to_inbox_members(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Marks a page members who answer visitors may open (DashboardSite.admin_view)."""
    view.open_to_inbox_members = True  # type: ignore[attr-defined]
    return view


@open_to_inbox_members
def inbox(request: HttpRequest) -> HttpResponse:
    tenant, tenants, can_answer = _workspace(request)
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Inbox",
        "tenant": tenant,
        "tenants": tenants,
        "can_answer": can_answer,
        "handling_choices": Chat.Handling.choices,
        "outcome_choices": OUTCOME_CHOICES,
        "feedback_choices": Message.Feedback.choices,
    }
    if tenant is not None:
        with tenant_scope(tenant):
            selected = parse_uuid(request.GET.get("chat"))
            context.update(_list_context(request, tenant, selected))
            context["bots"] = list(BotProfile.objects.filter(tenant=tenant).order_by("name"))
            if selected is not None:
                context.update(_transcript_context(tenant, _chat(tenant, selected), can_answer, request))
    return TemplateResponse(request, "admin/inbox/inbox.html", context)


@open_to_inbox_members
def inbox_list(request: HttpRequest) -> HttpResponse:
    """The list alone, for the page's live refresh."""
    tenant, _, _ = _workspace(request)
    if tenant is None:
        raise Http404("No workspace.")
    with tenant_scope(tenant):
        context = _list_context(request, tenant, parse_uuid(request.GET.get("chat")))
    return TemplateResponse(request, "admin/inbox/_list.html", context)


@open_to_inbox_members
def transcript(request: HttpRequest, chat_id: uuid.UUID) -> HttpResponse:
    """One conversation's transcript alone, for the page's live refresh."""
    tenant, _, can_answer = _workspace(request)
    if tenant is None:
        raise Http404("No workspace.")
    with tenant_scope(tenant):
        context = _transcript_context(tenant, _chat(tenant, chat_id), can_answer, request)
    return TemplateResponse(request, "admin/inbox/_transcript.html", context)


@open_to_inbox_members
def chat_action(request: HttpRequest, chat_id: uuid.UUID, action: str) -> HttpResponse:
    """Take over, release or reply (POST). A script gets 204, or 4xx `{"detail"}`; a plain form is
    sent back to the conversation with the outcome as a message."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if action not in ACTIONS:
        raise Http404("No such action.")
    tenant, _, can_answer = _workspace(request)
    if tenant is None or not can_answer:
        return _refused(request, chat_id, 403, NOT_AN_OPERATOR)
    scripted = request.headers.get("X-Requested-With") == "fetch"
    with tenant_scope(tenant):
        chat = _chat(tenant, chat_id)
        try:
            if action == "takeover":
                services.chat_take_over(tenant=tenant, chat=chat, operator=request.user)
            elif action == "release":
                services.chat_release(tenant=tenant, chat=chat)
            else:
                reply = ReplyInputSerializer(data={"content": request.POST.get("content", "")})
                if not reply.is_valid():
                    return _refused(request, chat_id, 422, " ".join(reply.errors["content"]))
                services.operator_reply(
                    tenant=tenant, chat=chat, operator=request.user, content=reply.validated_data["content"]
                )
        except ApplicationError as error:
            return _refused(request, chat_id, error.status_code, str(error.detail))
    if scripted:
        return HttpResponse(status=204)
    return redirect(_conversation_url(request, chat_id))


def _refused(request: HttpRequest, chat_id: uuid.UUID, status: int, detail: str) -> HttpResponse:
    if request.headers.get("X-Requested-With") == "fetch":
        return JsonResponse({"detail": detail}, status=status)
    messages.error(request, detail)
    return redirect(_conversation_url(request, chat_id))


def _conversation_url(request: HttpRequest, chat_id: uuid.UUID) -> str:
    query = {name: request.GET[name] for name in (*FILTER_PARAMS, "tenant") if request.GET.get(name)}
    return f"{reverse('admin:inbox')}?{urlencode({**query, 'chat': chat_id})}"
