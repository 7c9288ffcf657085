"""The ipywidgets form without a browser: pre-fill, Recommend, inline errors (tests/browser drives it for real)."""
from lowres import selector
from lowres.widgets import selector_form


def test_form_recommends_and_renders_the_plan():
    form = selector_form(dict(hardware="gpu", memory_gb=4.0, gpus=1, latency_ms=200.0, dataset_size=10000))
    form.button.click()
    assert form.error.value == ""
    assert "<table class='lowres-plan'>" in form.plan.value and "LoRA fine-tuning" in form.plan.value
    assert "distilbert-base-uncased" in form.plan.value and "FP16" in form.plan.value


def test_invalid_input_is_shown_inline_and_clears_the_plan():
    form = selector_form(dict(hardware="gpu", memory_gb=4.0, gpus=1))
    form.button.click()
    form.fields["memory_gb"].value = -1.0
    form.button.click()
    assert "Invalid input" in form.error.value and "memory_gb must be &gt; 0" in form.error.value
    assert form.plan.value == ""
    form.fields["memory_gb"].value = 4.0
    form.fields["dataset_size"].value = "lots"
    form.button.click()
    assert "dataset size must be a whole number" in form.error.value
    form.fields["dataset_size"].value = "10000"
    form.fields["train_hours"].value = "soon"
    form.button.click()
    assert "hours per epoch must be a number of hours" in form.error.value and form.plan.value == ""


def test_form_prefills_from_detection_and_disables_gpus_on_cpu(monkeypatch):
    monkeypatch.setattr(selector, "detect", lambda: {"hardware": "cpu", "memory_gb": 16.0, "gpus": 0})
    form = selector_form()
    assert form.fields["hardware"].value == "cpu" and form.fields["memory_gb"].value == 16.0
    assert form.fields["gpus"].disabled
    form.fields["task"].value = "qa"
    form.fields["latency_ms"].value = 400.0
    rec = form.recommend()
    assert rec.strategy == "rag" and "flan-t5-small" in form.plan.value
    form.fields["hardware"].value = "gpu"
    assert not form.fields["gpus"].disabled
