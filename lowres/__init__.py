"""lowres: what it costs to adapt language models when compute, memory and energy are scarce.

The top level stays light (no torch import): the names below load on first use.
"""
__version__ = "0.1.0"

_LAZY = {"start_run": "lowres.recording", "load_params": "lowres.config", "collect": "lowres.results",
         "measurement_table": "lowres.results", "Meter": "lowres.meters", "recommend": "lowres.selector"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lowres' has no attribute {name!r}")


__all__ = list(_LAZY)
