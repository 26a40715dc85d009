"""The "add a file" form in real Chromium: a file over the upload limit is refused in the page,
before it is sent, with the limit in MB; a file within it names the source after itself."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from minirag.tests.widget.axe import axe_violations, format_violations
from minirag.tests.widget.conftest import Chromium, WidgetSite
from sources.models import Source
from tenants.tenancy import tenant_scope


def test_an_over_size_file_is_refused_before_upload_and_a_good_one_names_itself(
    site: WidgetSite, chromium: Chromium
) -> None:
    world = site.world
    form_url = f"{site.api_url}/dashboard/sources/source/add/?source_type=upload&bot_profile={world.bot.pk}"
    too_large = b"x" * (settings.UPLOAD_MAX_BYTES + 1)

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(form_url)  # the login page first, then back to the form
        page.fill("input[name=username]", world.owner.email)
        page.fill("input[name=password]", world.password)
        page.click("input[type=submit]")
        page.wait_for_url(form_url)
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.method))
        page.set_input_files(
            "input[name=file]", files=[{"name": "manual.txt", "mimeType": "text/plain", "buffer": too_large}]
        )
        message = page.locator(".mr-file-error").inner_text()
        page.click("input[type=submit][name=_save]")
        page.wait_for_timeout(300)
        refused = {"message": message, "url": page.url, "posts": requests.count("POST")}
        page.set_input_files(
            "input[name=file]",
            files=[{"name": "opening_hours.md", "mimeType": "text/markdown", "buffer": b"# Hours\n\nOpen at nine."}],
        )
        refused["suggested"] = page.input_value("input[name=name]")
        refused["cleared"] = page.locator(".mr-file-error").is_hidden()
        page.click("input[type=submit][name=_save]")
        page.wait_for_url("**/sources/source/")
        return refused

    result = chromium.run(scenario)
    assert result["message"] == "This file is larger than the 10 MB limit.", result
    assert result["url"] == form_url and result["posts"] == 0  # nothing was sent
    assert result["suggested"] == "opening hours" and result["cleared"]
    with tenant_scope(world.tenant):
        assert Source.objects.filter(name="opening hours", bot_profile=world.bot).exists()


def test_the_bot_page_and_the_source_forms_have_no_serious_accessibility_problems(
    site: WidgetSite, chromium: Chromium
) -> None:
    world = site.world
    base = f"{site.api_url}/dashboard"
    pages = [f"{base}/bots/botprofile/{world.bot.pk}/change/", f"{base}/sources/source/add/?bot_profile={world.bot.pk}"]
    pages += [
        f"{base}/sources/source/add/?source_type={kind}" for kind in ("upload", "url", "crawl", "text", "nyxcore")
    ]

    def scenario(page: Any) -> dict[str, str]:
        page.goto(pages[0])
        page.fill("input[name=username]", world.owner.email)
        page.fill("input[name=password]", world.password)
        page.click("input[type=submit]")
        page.wait_for_url(pages[0])
        found = {}
        for url in pages:
            page.goto(url)
            violations = axe_violations(page)
            if violations:
                found[url] = format_violations(violations)
        return found

    found = chromium.run(scenario)
    assert not found, "\n\n".join(f"{url}\n{text}" for url, text in found.items())
