"""Open an exported report in headless Chromium (Playwright) as a reader at 1280x900 would, and check it as a
document: tables fit or scroll, no cell cut to "...", no console error, nothing requested from the network.
Screenshots of the page go to `shots_dir` (the test's temp dir) for a person to look at."""
from __future__ import annotations

from pathlib import Path

from test_selector_form import CHROMIUM_ARGS, require_browser

VIEWPORT = {"width": 1280, "height": 900}
TABLES_JS = """() => [...document.querySelectorAll('table')].map(t => {
    const box = t.parentElement;
    return {wide: t.scrollWidth > box.clientWidth + 1, overflow: getComputedStyle(box).overflowX,
            cut: [...t.querySelectorAll('td, th')].some(c => c.textContent.includes('...') || c.textContent.includes('…')),
            head: [...t.querySelectorAll('th')].map(h => h.textContent.trim())};
})"""
COLUMN_JS = """(name) => [...document.querySelectorAll('table')].filter(t =>
    [...t.querySelectorAll('th')].some(h => h.textContent.trim() === name)).flatMap(t => {
    const index = [...t.querySelectorAll('th')].findIndex(h => h.textContent.trim() === name);
    return [...t.querySelectorAll('tbody tr')].map(r => r.children[index].textContent.trim());
})"""


def inspect_page(html: Path, shots_dir: Path, name: str) -> dict:
    """Load `html` from disk; return what a reader's browser saw (tables, column values, requests, errors)
    and save a screenshot of each screenful of the anchors section and the whole page."""
    from playwright.sync_api import sync_playwright

    chromium = require_browser()
    shots_dir.mkdir(parents=True, exist_ok=True)
    requests, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(html.resolve().as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(shots_dir / f"{name}_top.png"))
        page.get_by_text("Published figures next to ours").first.scroll_into_view_if_needed()
        page.screenshot(path=str(shots_dir / f"{name}_anchors.png"))
        page.screenshot(path=str(shots_dir / f"{name}_full.png"), full_page=True)
        seen = {"tables": page.evaluate(TABLES_JS), "ratio": page.evaluate(COLUMN_JS, "ratio"),
                "ours": page.evaluate(COLUMN_JS, "ours (95% interval)"),
                "verdicts": page.evaluate(COLUMN_JS, "verdict")}
        browser.close()
    seen["external"] = [u for u in requests if not u.startswith(("file://", "data:"))]
    seen["errors"] = errors
    return seen


def assert_readable(seen: dict) -> None:
    assert seen["external"] == [], f"requests left the machine: {seen['external']}"
    assert seen["errors"] == [], f"console errors: {seen['errors']}"
    assert seen["tables"], "no HTML tables on the page"
    for table in seen["tables"]:
        assert not table["wide"] or table["overflow"] in ("auto", "scroll"), f"clipped table: {table['head'][:6]}"
        assert not table["cut"], f"a cell shows '...': {table['head'][:6]}"
