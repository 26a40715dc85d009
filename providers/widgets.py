"""Dashboard form widgets for choosing a model."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from providers.catalogue import MODES, Mode, model_catalogue


class ModelPickerWidget(forms.TextInput):
    """A text input that suggests the catalogue's models of one mode as the operator types (an HTML
    `<datalist>`), while any model string can still be entered: a new model, a custom endpoint's name.

    The list of a mode has one id on the page (`minirag-models-chat`), so a second picker of the same
    mode on a form can share the first one's list (`include_list=False`) instead of repeating its
    ~3,000 options. The catalogue is read when the widget renders, not when the form class is built:
    reading it the first time imports LiteLLM, which no process should pay for at import."""

    def __init__(self, mode: Mode = "chat", attrs: dict[str, Any] | None = None, *, include_list: bool = True) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}.")
        super().__init__({"autocomplete": "off", "spellcheck": "false", **(attrs or {})})
        self.mode = mode
        self.include_list = include_list

    @property
    def list_id(self) -> str:
        return f"minirag-models-{self.mode}"

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        field = super().render(name, value, {**(attrs or {}), "list": self.list_id}, renderer)
        if not self.include_list:
            return field
        options = format_html_join(
            "", '<option value="{}"></option>', ((entry.id,) for entry in model_catalogue() if entry.mode == self.mode)
        )
        return field + format_html('<datalist id="{}">{}</datalist>', self.list_id, options)
