"""Classification scores, one implementation for every study (torchmetrics): accuracy, macro-F1, balanced accuracy."""
from __future__ import annotations


def majority_share(labels) -> float:
    """Accuracy of always answering the commonest of `labels` (the floor a trained model must beat); NaN when
    there are none."""
    from collections import Counter

    labels = list(labels)
    return Counter(labels).most_common(1)[0][1] / len(labels) if labels else float("nan")


def classification_scores(preds, labels) -> dict:
    """{accuracy, f1 (macro), balanced_accuracy} of predicted vs gold label ids (tensors or sequences)."""
    import torch
    from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

    preds, labels = torch.as_tensor(preds).long().flatten(), torch.as_tensor(labels).long().flatten()
    if not len(labels):
        return {"accuracy": float("nan"), "f1": float("nan"), "balanced_accuracy": float("nan")}
    n = max(int(max(preds.max(), labels.max()).item()) + 1, 2)
    return {"accuracy": float((preds == labels).float().mean()),
            "f1": float(multiclass_f1_score(preds, labels, num_classes=n, average="macro")),
            "balanced_accuracy": float(multiclass_accuracy(preds, labels, num_classes=n, average="macro"))}
