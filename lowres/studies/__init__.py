"""Per-study Params (one module per params/<study>.yaml)."""
