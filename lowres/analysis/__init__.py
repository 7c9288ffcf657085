"""Per-study analysis: the tables, fits and seaborn figures a study notebook shows.

Contract (the cross-study report calls these, so no plotting code is written twice):
each `lowres/analysis/<study>.py` exposes
    key_table(df: pandas.DataFrame) -> pandas.DataFrame        # df = lowres.results.collect(study)
    key_figure(df: pandas.DataFrame, ax=None) -> matplotlib Axes
plus whatever else its notebook needs.
"""


def ok_runs(df):
    """The runs whose status is ok (none when the frame has no status column, e.g. nothing collected)."""
    return df[df["status"] == "ok"] if "status" in df else df.iloc[0:0]


def run_table(runs, columns: dict):
    """`run_id` and each of `columns` ({result column: table name}) that the results have, renamed."""
    return runs[["run_id"] + [c for c in columns if c in runs]].rename(columns=columns).reset_index(drop=True)
