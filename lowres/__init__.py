"""lowres: what it costs to adapt language models when compute, memory and energy are scarce."""
__version__ = "0.1.0"
