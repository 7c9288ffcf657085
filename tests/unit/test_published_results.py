"""The published reference results (docs/results/<machine>/): the tables load, every anchor row has a verdict
from the report's vocabulary, and the README states for each anchor the verdict the published table gives."""
import re
from pathlib import Path

import pandas as pd
import pytest

from lowres.anchors import ANCHORS, VERDICTS, NOT_MEASURABLE
from lowres.paths import project_root

PUBLISHED = sorted(p.parent for p in (project_root() / "docs" / "results").glob("*/anchors.csv"))


@pytest.fixture(params=PUBLISHED, ids=[p.name for p in PUBLISHED])
def published(request) -> Path:
    return request.param


def test_the_cpu_reference_is_published_and_linked_from_the_readme():
    assert project_root() / "docs" / "results" / "cpu" in PUBLISHED
    assert "docs/results/cpu/README.md" in (project_root() / "README.md").read_text()


def test_every_anchor_row_has_a_verdict(published):
    anchors = pd.read_csv(published / "anchors.csv")
    assert set(anchors["anchor"]) == {anchor.key for anchor in ANCHORS}
    assert anchors["verdict"].isin(VERDICTS).all(), anchors.loc[~anchors["verdict"].isin(VERDICTS), "verdict"]
    assert anchors["why"].notna().all()
    side_by_side = anchors["verdict"].isin(["reproduced", "not reproduced"])
    assert anchors.loc[~side_by_side, "ratio"].isna().all()  # a ratio only beside a comparable figure
    assert anchors.loc[side_by_side, "ours"].notna().all()
    assert anchors.loc[anchors["verdict"] == NOT_MEASURABLE, "ours"].isna().all()


def test_the_collected_tables_load_with_their_runs(published):
    tables = sorted((published / "tables").glob("*.csv"))
    assert tables
    for path in tables:
        frame = pd.read_csv(path, low_memory=False)
        assert len(frame) > 0 and {"run_id", "status"} <= set(frame.columns), path.name
    load = pd.read_csv(published / "load.csv")
    assert set(load["study"]) == {p.stem for p in tables}
    assert (published / "report.html").is_file() and (published / "env.txt").is_file()


def test_the_readme_states_the_published_verdict_of_every_anchor(published):
    """The README's verdict table is written by hand: it must say what anchors.csv says, anchor by anchor."""
    anchors = pd.read_csv(published / "anchors.csv").set_index("anchor")["verdict"]
    readme = (published / "README.md").read_text()
    stated = dict(re.findall(r"^\| `([a-z0-9_]+)` \|[^|]*\| \*\*([a-z ]+)\*\* \|", readme, flags=re.M))
    assert stated == anchors.to_dict()
