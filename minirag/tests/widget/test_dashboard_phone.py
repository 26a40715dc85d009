"""The dashboard in real Chromium at a laptop's width (1366 px) and a phone's (390 px): the start page,
list pages, the bot page and the health page never scroll sideways as a whole; wide tables scroll
inside their own box and show that they do; no link breaks one letter per line; and axe-core finds
no serious or critical accessibility problem on the start and health pages, for a tenant owner and
for an operator. Screenshots are kept under var/test-artifacts/dashboard/ (MINIRAG_TEST_ARTIFACTS
overrides the directory) for a person to look at."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import TenantWorld, build_world
from minirag.tests.widget.axe import axe_violations, format_violations
from minirag.tests.widget.conftest import Chromium, InFlight
from sources.models import Source, SourceStatus
from tenants.models import User
from tenants.tenancy import tenant_scope, tenant_scope_disabled

ARTIFACTS = Path(
    os.environ.get("MINIRAG_TEST_ARTIFACTS") or Path(__file__).resolve().parents[3] / "var" / "test-artifacts"
)
SHOTS = ARTIFACTS / "dashboard"
WIDTHS = (1366, 390)
OPERATOR_EMAIL, OPERATOR_PASSWORD = "ops@example.com", "operator-password"
SCROLL_BOXES = "#changelist-form .results, .inline-group, .mr-scroll"

# What a page's layout looks like to a person, measured in the page: its width against the
# viewport's, every element sticking out of the viewport (except inside a box that scrolls on its
# own), and every link or heading broken into more lines than it has words.
LAYOUT = r"""(boxes) => {
  const viewport = document.documentElement.clientWidth;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (typeof el.className === "string" && el.className ? "." + el.className.trim().split(/\s+/).join(".") : "");
  const sticking = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.closest(boxes);
    if (box && box !== el) continue;
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || r.bottom < 0) continue;  // hidden, or the off-screen skip link
    if (r.right > viewport + 1 || r.left < -1) {
      sticking.push(name(el) + " " + Math.round(r.left) + "-" + Math.round(r.right));
    }
  }
  // Lines a text takes: the distinct tops of its text's boxes (screen-reader-only text aside).
  const shown = (node) => node.textContent.trim() && !node.parentElement.closest(".visually-hidden");
  const lines = (el) => {
    const tops = new Set();
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!shown(node)) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      for (const r of range.getClientRects()) if (r.width > 0) tops.add(Math.round(r.top));
    }
    return tops.size;
  };
  const words = (el) => {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    const parts = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) if (shown(node)) parts.push(node.textContent);
    const text = parts.join(" ").trim();
    return text ? text.split(/\s+/) : [];
  };
  const broken = [];
  for (const el of document.querySelectorAll("a, th, td, h1, h2, h3, button, label, .mr-step-state")) {
    if (el.closest(".visually-hidden") || el.getBoundingClientRect().width <= 1) continue;
    const count = lines(el), text = words(el);
    // More lines than words, of a few letters each: a word broken letter by letter (a hyphen or a
    // long address wrapping in a narrow column is fine).
    const letters = text.join("").length;
    if (text.length && count > text.length && letters / count < 4) {
      broken.push(name(el) + " '" + text.join(" ").slice(0, 30) + "': " + count + " lines");
    }
  }
  return {
    scrollWidth: document.documentElement.scrollWidth,
    viewport,
    sticking: sticking.slice(0, 10),
    broken: broken.slice(0, 10),
  };
}"""


@pytest.fixture
def dashboard(transactional_db: Any, api_server: tuple[str, InFlight]) -> Iterator[tuple[str, TenantWorld]]:
    api_url, in_flight = api_server
    world = build_world("alpha")
    with tenant_scope(world.tenant):  # something to call out on the start and health pages
        Source.objects.filter(pk=world.upload_source.pk).update(
            status=SourceStatus.ERROR, error_message="The file could not be read: it is not a Markdown file."
        )
    with tenant_scope_disabled("test: create operator"):
        User.objects.create_superuser(OPERATOR_EMAIL, OPERATOR_PASSWORD)
    yield api_url, world
    in_flight.wait_idle()


def log_in(page: Any, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/dashboard/login/?next=/dashboard/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/dashboard/")


def shoot(page: Any, name: str) -> str:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return str(path)


def visit(page: Any, url: str) -> dict[str, Any]:
    page.goto(url)
    page.wait_for_load_state("load")
    page.wait_for_timeout(50)  # scroll_cue.js runs on DOMContentLoaded; let it mark the boxes
    return page.evaluate(LAYOUT, SCROLL_BOXES)


def assert_fits(layout: dict[str, Any], width: int, what: str) -> None:
    assert layout["scrollWidth"] <= width, (what, layout)
    assert not layout["sticking"], (what, layout["sticking"])
    assert not layout["broken"], (what, layout["broken"])


def test_the_dashboard_fits_a_laptop_and_a_phone(dashboard: tuple[str, TenantWorld], chromium: Chromium) -> None:
    base, world = dashboard
    pages = {
        "start": "/dashboard/",
        "sources": "/dashboard/sources/source/",
        "tokens": "/dashboard/tenants/apitoken/",
        "messages": "/dashboard/chat/message/",
        "bot": f"/dashboard/bots/botprofile/{world.bot.pk}/change/",
        "health": "/dashboard/health/",
        "usage": "/dashboard/usage/",
    }
    shots: list[str] = []

    for width in WIDTHS:

        def scenario(page: Any, width: int = width) -> dict[str, Any]:
            log_in(page, base, world.owner.email, world.password)
            seen = {}
            for name, path in pages.items():
                seen[name] = visit(page, base + path)
                if name in ("start", "sources", "bot", "health"):
                    shots.append(shoot(page, f"tenant-{name}-{width}"))
            # The sources list: its table scrolls in its own box, which says so on a phone.
            page.goto(base + pages["sources"])
            page.wait_for_timeout(50)
            results = page.locator("#changelist-form .results")
            cue = {
                "classes": results.get_attribute("class"),
                "hint_visible": page.locator(".mr-scroll-hint").first.is_visible()
                if page.locator(".mr-scroll-hint").count()
                else False,
                "tabindex": results.get_attribute("tabindex"),
                "overflows": results.evaluate("box => box.scrollWidth > box.clientWidth + 1"),
            }
            results.evaluate("box => box.scrollTo({left: box.scrollWidth})")
            page.wait_for_timeout(100)
            cue["classes_at_end"] = results.get_attribute("class")
            return {"layouts": seen, "cue": cue}

        result = chromium.run(scenario, width=width, height=900)
        for name, layout in result["layouts"].items():
            assert_fits(layout, width, f"{name} at {width}px")
        # The cue shows exactly when the table is wider than its box (always on a phone).
        cue = result["cue"]
        assert cue["overflows"] or width > 390, cue
        if cue["overflows"]:
            assert "mr-scrollable" in cue["classes"] and "mr-more-right" in cue["classes"], cue
            assert cue["hint_visible"] and cue["tabindex"] == "0", cue
            assert "mr-more-right" not in cue["classes_at_end"] and "mr-more-left" in cue["classes_at_end"], cue
        else:
            assert "mr-scrollable" not in cue["classes"] and not cue["hint_visible"], cue
    assert all(Path(shot).stat().st_size > 0 for shot in shots)


def test_the_operators_start_page_fits_a_phone(dashboard: tuple[str, TenantWorld], chromium: Chromium) -> None:
    base, _ = dashboard
    build_world("beta")
    for width in WIDTHS:

        def scenario(page: Any, width: int = width) -> dict[str, Any]:
            log_in(page, base, OPERATOR_EMAIL, OPERATOR_PASSWORD)
            start = visit(page, base + "/dashboard/")
            tenants = page.locator("table.mr-tenants tbody tr").count()
            shoot(page, f"operator-start-{width}")
            health = visit(page, base + "/dashboard/health/")
            shoot(page, f"operator-health-{width}")
            return {"start": start, "health": health, "tenants": tenants}

        result = chromium.run(scenario, width=width, height=900)
        assert result["tenants"] == 2
        assert_fits(result["start"], width, f"operator start at {width}px")
        assert_fits(result["health"], width, f"operator health at {width}px")


def test_the_start_and_health_pages_have_no_serious_accessibility_problems(
    dashboard: tuple[str, TenantWorld], chromium: Chromium
) -> None:
    base, world = dashboard
    people = {"owner": (world.owner.email, world.password), "operator": (OPERATOR_EMAIL, OPERATOR_PASSWORD)}
    runs = [(who, width, "light") for who in people for width in WIDTHS] + [(who, 1366, "dark") for who in people]
    found: dict[str, list[dict[str, Any]]] = {}
    for who, width, scheme in runs:
        email, password = people[who]

        def scenario(page: Any, email: str = email, password: str = password) -> dict[str, Any]:
            log_in(page, base, email, password)
            problems = {}
            for name, path in (("start", "/dashboard/"), ("health", "/dashboard/health/")):
                page.goto(base + path)
                page.wait_for_timeout(50)
                problems[name] = axe_violations(page)
            return problems

        for name, violations in chromium.run(scenario, width=width, height=900, color_scheme=scheme).items():
            found[f"{who} {name} at {width}px ({scheme})"] = violations
    problems = {page: format_violations(v) for page, v in found.items() if v}
    assert not problems, "\n\n".join(f"{page}:\n{text}" for page, text in problems.items())
