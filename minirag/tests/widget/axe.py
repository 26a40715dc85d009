"""Accessibility checks with axe-core in real Chromium, for any page a Playwright test has open.

axe-core comes from npm, pinned in `package.json`/`package-lock.json` at the repository root, and
is installed into `node_modules/` by `scripts/ensure_browser_tools.sh` (`npm ci`), which
`make test` runs; nothing is downloaded at test time.

Use it inside a Chromium scenario (see `conftest.Chromium.run`), once the page shows what should be
checked::

    from minirag.tests.widget.axe import assert_accessible, axe_violations

    def scenario(page):
        page.goto(url)
        ...                                   # log in, open the form, wait for it to render
        assert_accessible(page)               # fails with a readable list of serious/critical issues
        # or, to look at them yourself:
        return axe_violations(page, include=["#content-main"], disable=["region"])

    chromium.run(scenario)

`axe_violations(page, *, include=None, exclude=None, impacts=SERIOUS, disable=(), tags=None)`
injects axe once per page (again after a navigation), runs it on the document (or the `include`
selectors, minus `exclude`) and returns the violations whose impact is in `impacts` — by default
serious and critical, the ones that stop someone from using the page — as plain dicts:
`{"id", "impact", "help", "help_url", "nodes": [{"target", "html", "summary"}]}`. `disable` turns
rules off by id (say why in the test); `tags` limits the run to rule tags such as
`["wcag2a", "wcag2aa"]`. `assert_accessible(page, **same)` asserts there are none and prints them
when there are. `format_violations(violations)` renders them for an assertion message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

AXE_SCRIPT = Path(__file__).resolve().parents[3] / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")
EVERY_IMPACT = ("minor", "moderate", "serious", "critical")


def _inject(page: Any) -> None:
    assert AXE_SCRIPT.exists(), (
        f"axe-core is missing ({AXE_SCRIPT}): run scripts/ensure_browser_tools.sh (make test does), "
        "which installs the version pinned in package-lock.json with `npm ci`"
    )
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_SCRIPT))


def axe_violations(
    page: Any,
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    impacts: Iterable[str] = SERIOUS,
    disable: Iterable[str] = (),
    tags: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """axe-core's violations on the page (shadow DOM included) with one of `impacts`."""
    _inject(page)
    context: Any = "document"
    if include or exclude:
        context = json.dumps({"include": [[s] for s in include or ["html"]], "exclude": [[s] for s in exclude or []]})
    options: dict[str, Any] = {"resultTypes": ["violations"]}
    if disable:
        options["rules"] = {rule: {"enabled": False} for rule in disable}
    if tags:
        options["runOnly"] = {"type": "tag", "values": list(tags)}
    results = page.evaluate(
        f"async (options) => await axe.run({context}, options)",
        options,
    )
    wanted = set(impacts)
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "help_url": violation.get("helpUrl", ""),
            "nodes": [
                {
                    "target": node.get("target"),
                    "html": node.get("html", "")[:300],
                    "summary": node.get("failureSummary", ""),
                }
                for node in violation["nodes"]
            ],
        }
        for violation in results["violations"]
        if violation["impact"] in wanted
    ]


def format_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"[{violation['impact']}] {violation['id']}: {violation['help']} ({violation['help_url']})")
        for node in violation["nodes"][:10]:
            lines.append(f"    {node['target']}: {node['html']}")
            if node["summary"]:
                lines.append("      " + node["summary"].replace("\n", "\n      "))
    return "\n".join(lines)


def assert_accessible(page: Any, **options: Any) -> None:
    """No violations (serious or critical by default; options as `axe_violations`)."""
    violations = axe_violations(page, **options)
    assert not violations, f"axe-core found on {page.url}:\n{format_violations(violations)}"
