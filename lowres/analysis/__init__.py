"""Per-study analysis: the tables, fits and seaborn figures a study notebook shows.

Contract (the cross-study report calls these, so no plotting code is written twice):
each `lowres/analysis/<study>.py` exposes
    key_table(df: pandas.DataFrame) -> pandas.DataFrame        # df = lowres.results.collect(study)
    key_figure(df: pandas.DataFrame, ax=None) -> matplotlib Axes
plus whatever else its notebook needs.
"""
