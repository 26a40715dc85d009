"""Dashboard form parts shared by the two places a model endpoint is typed in: a bot's own endpoint
(bots/admin.py) and an operator's named connection (providers/admin.py)."""

from __future__ import annotations

from typing import Any

from django import forms

from providers.endpoints import header_lines


class EndpointSecretsForm(forms.Form):
    """The write-only key and extra headers of an endpoint: typed in, encrypted by the service, never
    shown again. Mixed into a model form; `credentials_change` says what to hand the service."""

    api_key = forms.CharField(
        required=False,
        strip=True,
        label="Provider API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted; leave empty to keep the stored one.",
    )
    headers = forms.CharField(
        required=False,
        label="Extra headers",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60, "placeholder": "X-Team: support", "autocomplete": "off"}),
        help_text=(
            "Sent with every model call, one per line as Name: value (a gateway's team or routing header, say). "
            "Stored encrypted with the key and never shown; leave empty to keep them."
        ),
    )
    clear_credentials = forms.BooleanField(required=False, label="Remove the stored key and headers")

    def clean_headers(self) -> dict[str, str] | None:
        text = self.cleaned_data.get("headers") or ""
        if not text.strip():
            return None
        try:
            return header_lines(text.splitlines())
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None

    def credentials_change(self, stored: dict[str, Any]) -> dict[str, Any] | None:
        """The credentials to save (`{}` clears them), or None to keep the stored ones. A new key keeps
        the stored headers, and new headers the stored key."""
        data = self.cleaned_data
        if data.get("clear_credentials"):
            return {}
        if not (data.get("api_key") or data.get("headers")):
            return None
        credentials = dict(stored)
        if data.get("api_key"):
            credentials["api_key"] = data["api_key"]
        if data.get("headers"):
            credentials["headers"] = data["headers"]
        return credentials


def lines(text: str | None) -> list[str]:
    """One entry per non-blank line, stripped."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]
