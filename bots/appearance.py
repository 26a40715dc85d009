"""How a bot's chat widget looks: its stored appearance settings (`BotProfile.widget`), their
validation, and the public document the widget reads at start (`GET /v1/bot-profiles/{id}/widget-config`:
these settings and the bot's hand-off setting).

A company sets these on the dashboard or through the API, without touching its site's code; the
attributes of a `<minirag-widget>` element (or the `data-` attributes of its script tag) still win
over them (docs/widget.md). Only the settings someone set are stored; the defaults below fill the
rest when read, so a changed default reaches every bot that never chose otherwise.

Every value ends up in visitors' browsers and nowhere else: the server never fetches the avatar
image (it is an `https` address the widget hands to an `<img>`), and nothing here is a secret.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import urlsplit

from django import forms

from minirag.errors import InvalidInputError

# The widget's own defaults (static/widget/minirag-widget.js): "" and null mean "the widget decides"
# (its translated title, no welcome message, the page's language).
DEFAULTS: dict[str, Any] = {
    "title": "",
    "accent_color": "#2557d6",
    "position": "bottom-right",
    "launcher": "chat",
    "avatar_url": None,
    "welcome_message": "",
    "starter_questions": [],
    "lang": None,
    "powered_by": False,
}
POSITIONS = ("bottom-right", "bottom-left")
# The launcher's built-in icons: a speech bubble, a question mark, a sparkle.
LAUNCHER_ICONS = ("chat", "help", "sparkle")
LANGUAGES = ("en", "de", "fr")
MAX_TITLE_CHARS = 80
MAX_WELCOME_CHARS = 1000
MAX_STARTER_QUESTIONS = 6
MAX_STARTER_CHARS = 200
MAX_AVATAR_URL_CHARS = 500
ACCENT_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
# Control characters and whitespace never belong in an address a browser is handed.
UNSAFE_URL_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\\"'<>`]")


def _invalid(key: str, message: str) -> InvalidInputError:
    return InvalidInputError.for_field(f"widget.{key}", message)


def _text(key: str, value: Any, limit: int, *, single_line: bool) -> str:
    if not isinstance(value, str):
        raise _invalid(key, "Must be a string.")
    value = value.strip()
    if single_line and ("\n" in value or "\r" in value):
        raise _invalid(key, "Must be one line.")
    if len(value) > limit:
        raise _invalid(key, f"At most {limit} characters.")
    return value


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _invalid(key, f"Must be one of: {', '.join(choices)}.")
    return value


def _accent_color(value: Any) -> str:
    if not isinstance(value, str) or not ACCENT_COLOR.fullmatch(value.strip()):
        raise _invalid("accent_color", "Must be a colour written #rrggbb, such as #2557d6.")
    return value.strip().lower()


def _avatar_url(value: Any) -> str | None:
    """An https address of an image, loaded by visitors' browsers (never by the server)."""
    if value == "":
        return None
    if not isinstance(value, str):
        raise _invalid("avatar_url", "Must be an https URL or null.")
    value = value.strip()
    if len(value) > MAX_AVATAR_URL_CHARS:
        raise _invalid("avatar_url", f"At most {MAX_AVATAR_URL_CHARS} characters.")
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        raise _invalid("avatar_url", "Must be a valid https URL.") from None
    if parts.scheme != "https" or not hostname or UNSAFE_URL_CHARACTERS.search(value):
        raise _invalid("avatar_url", "Must be an https URL, such as https://www.example.com/avatar.png.")
    if parts.username is not None or parts.password is not None:
        raise _invalid("avatar_url", "Must not contain a user name or password.")
    return value


def _starter_questions(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(question, str) for question in value):
        raise _invalid("starter_questions", "Must be a list of questions.")
    questions = [" ".join(question.split()) for question in value]
    if len(questions) > MAX_STARTER_QUESTIONS:
        raise _invalid("starter_questions", f"At most {MAX_STARTER_QUESTIONS} questions.")
    if any(not question or len(question) > MAX_STARTER_CHARS for question in questions):
        raise _invalid("starter_questions", f"Each question must be 1 to {MAX_STARTER_CHARS} characters.")
    if len(set(questions)) != len(questions):
        raise _invalid("starter_questions", "The questions must differ from each other.")
    return questions


def _powered_by(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _invalid("powered_by", "Must be true or false.")
    return value


CLEANERS = {
    "title": lambda value: _text("title", value, MAX_TITLE_CHARS, single_line=True),
    "accent_color": _accent_color,
    "position": lambda value: _choice("position", value, POSITIONS),
    "launcher": lambda value: _choice("launcher", value, LAUNCHER_ICONS),
    "avatar_url": _avatar_url,
    "welcome_message": lambda value: _text("welcome_message", value, MAX_WELCOME_CHARS, single_line=False),
    "starter_questions": _starter_questions,
    "lang": lambda value: _choice("lang", value, LANGUAGES),
    "powered_by": _powered_by,
}


def appearance_merge(stored: dict[str, Any] | None, changes: Any) -> dict[str, Any]:
    """The settings to store after `changes` (a partial object: a key set to null goes back to its
    default). Raises InvalidInputError (422, `errors` keyed `widget.<setting>`) on the first bad value."""
    if changes is None:
        return {}
    if not isinstance(changes, dict):
        raise InvalidInputError.for_field("widget", "Must be an object of appearance settings.")
    unknown = sorted(set(changes) - set(DEFAULTS))
    if unknown:
        raise InvalidInputError.for_field(
            "widget", f"Unknown settings: {', '.join(unknown)}. Known: {', '.join(DEFAULTS)}."
        )
    merged = {key: value for key, value in (stored or {}).items() if key in DEFAULTS}
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
            continue
        cleaned = CLEANERS[key](value)
        if cleaned is None or cleaned == DEFAULTS[key]:
            merged.pop(key, None)  # stored only when it differs, so a new default reaches it
        else:
            merged[key] = cleaned
    return merged


def appearance(stored: dict[str, Any] | None) -> dict[str, Any]:
    """Every setting in force: the stored ones over the defaults (a copy, safe to change)."""
    settings = json.loads(json.dumps(DEFAULTS))
    settings.update({key: value for key, value in (stored or {}).items() if key in DEFAULTS})
    return settings


def widget_config(stored: dict[str, Any] | None, handoff: str) -> dict[str, Any]:
    """The public widget-config document: the appearance in force, plus the bot's `handoff` setting
    (bots/models.py `Handoff`). That one is set on the bot itself, not among these settings (no
    attribute overrides it), but the widget must know it before any chat exists, to show its
    "Talk to a person" control (or not)."""
    return {**appearance(stored), "handoff": handoff}


def appearance_etag(settings: dict[str, Any]) -> str:
    """A strong validator of the widget-config document: the digest of its canonical JSON (every
    field of it, so a changed `handoff` is a new version too)."""
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return '"' + hashlib.sha256(canonical.encode()).hexdigest()[:32] + '"'


# --- The dashboard's fieldset (bots/admin.py) -------------------------------------------------

FORM_FIELDS = {f"widget_{key}": key for key in DEFAULTS}


class WidgetAppearanceForm(forms.Form):
    """The appearance settings as form fields, mixed into the bot's model form: they are gathered
    into one `widget` value handed to the service, which validates them (its errors, keyed
    `widget.<setting>`, come back to the field they belong to)."""

    widget_title = forms.CharField(
        required=False,
        max_length=MAX_TITLE_CHARS,
        label="Title",
        help_text="The chat window's title. Empty: \"Ask us\", in the visitor's language.",
    )
    widget_accent_color = forms.CharField(
        required=False,
        label="Accent colour",
        initial=DEFAULTS["accent_color"],
        widget=forms.TextInput(attrs={"type": "color"}),
        help_text="The launcher, the header, the visitor's messages and links. Text on it turns dark or "
        "light by itself, to stay readable.",
    )
    widget_position = forms.ChoiceField(
        choices=[("bottom-right", "Bottom right"), ("bottom-left", "Bottom left")],
        initial=DEFAULTS["position"],
        label="Position",
    )
    widget_launcher = forms.ChoiceField(
        choices=[("chat", "Speech bubble"), ("help", "Question mark"), ("sparkle", "Sparkle")],
        initial=DEFAULTS["launcher"],
        label="Launcher icon",
    )
    widget_avatar_url = forms.CharField(
        required=False,
        max_length=MAX_AVATAR_URL_CHARS,
        label="Avatar image",
        widget=forms.URLInput(attrs={"placeholder": "https://www.example.com/avatar.png", "size": 60}),
        help_text="Optional: the https address of a square image shown instead of the icon (and in the "
        "header). Visitors' browsers load it from there; if it cannot be loaded, the icon is shown.",
    )
    widget_welcome_message = forms.CharField(
        required=False,
        max_length=MAX_WELCOME_CHARS,
        label="Welcome message",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Shown as the first message, before any question.",
    )
    widget_starter_questions = forms.CharField(
        required=False,
        label="Starter questions",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "placeholder": "How do returns work?"}),
        help_text=f"One per line, at most {MAX_STARTER_QUESTIONS} of {MAX_STARTER_CHARS} characters each: "
        "offered as buttons before the first question.",
    )
    widget_lang = forms.ChoiceField(
        choices=[("", "The page's language"), ("en", "English"), ("de", "Deutsch"), ("fr", "Français")],
        required=False,
        label="Language",
        help_text="The language of the widget's own texts (buttons, errors).",
    )
    widget_powered_by = forms.BooleanField(required=False, label='Show "Powered by MiniRAG"')

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        instance = getattr(self, "instance", None)
        if instance is not None and not instance._state.adding:
            for name, value in self.appearance_initial(instance.widget).items():
                self.initial[name] = value

    @staticmethod
    def appearance_initial(stored: dict[str, Any] | None) -> dict[str, Any]:
        settings = appearance(stored)
        initial = {f"widget_{key}": value for key, value in settings.items()}
        initial["widget_starter_questions"] = "\n".join(settings["starter_questions"])
        initial["widget_avatar_url"] = settings["avatar_url"] or ""
        initial["widget_lang"] = settings["lang"] or ""
        return initial

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        data = {key: cleaned.get(name) for name, key in FORM_FIELDS.items()}
        data["starter_questions"] = [
            line.strip() for line in (data["starter_questions"] or "").splitlines() if line.strip()
        ]
        # Empty inputs mean "the default" (null), which the service stores as nothing.
        for key in ("accent_color", "avatar_url", "lang"):
            data[key] = data[key] or None
        cleaned["widget"] = data
        return cleaned

    @property
    def changed_data(self) -> list[str]:
        # The service is handed `widget` only when one of its fields changed (ServiceForm subclasses
        # pass the changed fields).
        changed = list(super().changed_data)
        if any(name in FORM_FIELDS for name in changed):
            changed.append("widget")
        return changed

    def _add_service_errors(self, detail: str, errors: dict[str, list[str]]) -> None:
        # The service's `widget.accent_color` is this form's `widget_accent_color`.
        errors = {
            (key.replace(".", "_", 1) if key.startswith("widget.") else key): messages
            for key, messages in errors.items()
        }
        super()._add_service_errors(detail, errors)  # type: ignore[misc]


# The dashboard's fieldset of these fields (the live preview finds it by its class).
APPEARANCE_FIELDSET: tuple[str, dict[str, Any]] = (
    "Widget appearance",
    {
        "fields": list(FORM_FIELDS),
        "classes": ["mr-appearance"],
        "description": "How the chat widget looks on your site, with no code to change: it reads these settings when "
        "it starts (browsers keep them up to 5 minutes). An attribute written in your site's snippet, such as "
        "data-title, still takes precedence over the setting of the same name.",
    },
)
