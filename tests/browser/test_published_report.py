"""The published reference report (docs/results/<machine>/report.html) opened in headless Chromium as a reader
would: readable tables, no request off the machine, and the verdicts on the page are those of anchors.csv."""
import csv

import pytest

from lowres.paths import project_root
from report_page import assert_readable, inspect_page

pytestmark = pytest.mark.browser
PUBLISHED = sorted(p.parent for p in (project_root() / "docs" / "results").glob("*/report.html"))


@pytest.mark.parametrize("folder", PUBLISHED, ids=[p.name for p in PUBLISHED])
def test_published_report_reads_cleanly_with_the_published_verdicts(folder, tmp_path):
    seen = inspect_page(folder / "report.html", tmp_path / "screenshots", folder.name)
    assert_readable(seen)
    with open(folder / "anchors.csv", newline="") as handle:
        verdicts = [row["verdict"] for row in csv.DictReader(handle)]
    assert seen["verdicts"] == verdicts
    figures = list((folder / "report_files").glob("*.png"))
    assert figures, "the published page has no figure files beside it"
