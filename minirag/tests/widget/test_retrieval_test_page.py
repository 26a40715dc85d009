"""The bot's "Test retrieval" dashboard page in real Chromium: an owner logs in, asks a question,
and reads the verdict and the scored chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minirag.tests.widget.conftest import Chromium, WidgetSite


def test_an_owner_tests_retrieval_from_the_dashboard(site: WidgetSite, chromium: Chromium, tmp_path: Path) -> None:
    world = site.world
    url = f"{site.api_url}/dashboard/bots/botprofile/{world.bot.pk}/retrieval-test/"

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(url)  # the login page first, then back here
        page.fill("input[name=username]", world.owner.email)
        page.fill("input[name=password]", world.password)
        page.click("input[type=submit]")
        page.wait_for_url(url)
        page.fill("textarea[name=question]", "When does the office open?")
        page.click("input[value='Test retrieval']")
        page.wait_for_selector("[data-verdict]")
        page.screenshot(path=str(tmp_path / "retrieval-test.png"), full_page=True)
        return {
            "verdict": page.get_attribute("[data-verdict]", "data-verdict"),
            "passed": page.locator("tr[data-passed=true]").count(),
            "header": page.locator(".mr-retrieval-chunks thead").inner_text(),
        }

    result = chromium.run(scenario)
    assert result["verdict"] == "answered" and result["passed"] >= 1, result
    for column in ("Dense", "Lexical", "Fused", "Coverage", "Why"):
        assert column.upper() in result["header"].upper()
    assert (tmp_path / "retrieval-test.png").stat().st_size > 10_000
