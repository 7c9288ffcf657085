"""Corpora (real, from LOWRES_DATA_DIR, or seeded synthetic) and Lightning DataModules with token counts."""
from lowres.data.corpora import (ClassificationCorpus, DatasetNotAvailable, KnowledgeBase, TextCorpus,
                                 check_available, dataset_kind, dataset_names, load_corpus)

__all__ = ["ClassificationCorpus", "DatasetNotAvailable", "KnowledgeBase", "TextCorpus", "check_available",
           "dataset_kind", "dataset_names", "load_corpus"]
