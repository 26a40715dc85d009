"""`chat --tenant SLUG --bot ID`: talk to a bot in the terminal, answers streamed, sources listed."""

from __future__ import annotations

import json
import sys
import uuid
from typing import Any

from asgiref.sync import async_to_sync
from django.core.management.base import CommandError, CommandParser

from bots.selectors import bot_profile_get
from chat import turns
from chat.serializers import MAX_MESSAGE_CHARS
from chat.services import prepare_turn
from minirag.errors import ApplicationError
from minirag.management.base import command_error
from tenants.authentication import Principal
from tenants.management.base import TenantCommand
from tenants.models import Role, Tenant, User, normalize_email


class Command(TenantCommand):
    help = """\
Chat with a bot in the terminal. Each answer is streamed as it is generated, then its sources
are listed ([1] source name, title, URL, score). Type a question and press Enter; an empty line
or Ctrl-D ends. With --message, asks that one question, prints the answer and exits (status 1 if
the answer failed). The conversation is stored like any other, for --user (default: the tenant's
first active owner), and follows the bot's retrieval and refusal settings.

Examples:
  python manage.py chat --tenant acme --bot BOT_ID
  python manage.py chat --tenant acme --bot BOT_ID --message "How long do refunds take?"
"""
    option_names = {"message": "--message", "bot_profile_id": "--bot"}

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bot", required=True, help="Id of the bot profile to talk to.")
        parser.add_argument("--message", help="Ask this one question, print the answer, and exit.")
        parser.add_argument("--user", help="Email of the user the chat is recorded for (default: first owner).")

    def handle_tenant(self, tenant: Tenant, *args: Any, **options: Any) -> None:
        bot = bot_profile_get(tenant=tenant, bot_profile_id=options["bot"])
        users = User.objects.filter(tenant=tenant, is_active=True)
        user = (
            users.filter(email=normalize_email(options["user"])).first()
            if options["user"]
            else users.filter(role=Role.OWNER).order_by("created_at").first()
        )
        if user is None:
            raise CommandError("No such active user in this tenant.")
        principal = Principal(tenant=tenant, user=user, method="session")
        one_question = options["message"] is not None
        if not one_question:
            self.stdout.write(self.style.SUCCESS(f"Chatting with {bot.name} ({bot.model}). Empty line to quit."))
        questions = [options["message"]] if one_question else self._questions()
        chat_id: uuid.UUID | None = None
        for question in questions:
            problem = _question_problem(question)
            if problem and one_question:
                raise CommandError(f"--message: {problem}")
            if problem:
                self.stderr.write(f"error: {problem}")
                continue
            try:
                turn = prepare_turn(principal=principal, bot_profile_id=bot.pk, message=question, chat_id=chat_id)
            except ApplicationError as exc:
                if one_question:
                    raise command_error(exc, options=self.option_names) from exc
                self.stderr.write(f"error: {exc.detail}")  # a bad question ends nothing: ask another
                continue
            chat_id = turn.chat_id
            failure = async_to_sync(self._print_answer)(turn)
            if failure and one_question:
                raise CommandError(f"The answer failed: {failure}")
            if failure:
                self.stderr.write(f"error: {failure}")

    def _questions(self) -> Any:
        while True:
            if sys.stdin.isatty():
                self.stdout.write("\nyou> ", ending="")
                self.stdout.flush()
            line = sys.stdin.readline()
            if not line.strip():
                return
            yield line.strip()

    async def _print_answer(self, turn: Any) -> str | None:
        """Stream one answer; returns the error's detail if it failed."""
        sources: list[dict[str, Any]] = []
        self.stdout.write("bot> ", ending="")
        async for event in turns.stream(turn):
            if event.startswith(":"):
                continue  # a keep-alive comment
            name, data = _parse(event)
            if name == "sources":
                sources = data["sources"]
            elif name == "delta":
                self.stdout.write(data["content"], ending="")
                self.stdout.flush()
            elif name == "error":
                self.stdout.write("")
                return str(data["detail"])
        self.stdout.write("")
        for number, source in enumerate(sources, start=1):
            where = f" — {source['title']}" if source.get("title") and source["title"] != source["source_name"] else ""
            url = f" <{source['url']}>" if source.get("url") else ""
            self.stdout.write(
                self.style.HTTP_INFO(f"  [{number}] {source['source_name']}{where}{url} ({source['score']})")
            )
        return None


def _question_problem(question: str) -> str | None:
    """What the API would refuse in this question (checked by its serializer there)."""
    if not question.strip():
        return "The message is empty."
    if len(question) > MAX_MESSAGE_CHARS:
        return f"The message is longer than {MAX_MESSAGE_CHARS} characters."
    return None


def _parse(event: str) -> tuple[str, dict[str, Any]]:
    name_line, data_line = event.strip().split("\n", 1)
    return name_line.removeprefix("event: "), json.loads(data_line.removeprefix("data: "))
