"""The ipywidgets form around `lowres.selector.recommend`: inputs pre-filled from detection, a Recommend
button, the plan rendered below as HTML, and invalid input shown inline (red, above the plan). A Probe button
runs the plan on this machine (`lowres.probe`, as `lowres recommend --probe`) and shows measured beside
estimated; it needs the form to describe this machine (a hardware fingerprint).

    from lowres.widgets import selector_form
    selector_form()                                   # in a notebook cell

Every widget carries a CSS class `lowres-<name>` so browser tests (and users' styles) can find it.
"""
from __future__ import annotations

from lowres import selector

ERROR_STYLE = "color:#b00020;font-weight:600"


def build_fields(defaults: dict):
    import ipywidgets as w

    style, layout = {"description_width": "140px"}, w.Layout(width="380px")
    fields = {
        "task": w.Dropdown(options=selector.TASKS, value=defaults["task"], description="Task"),
        "hardware": w.Dropdown(options=selector.HARDWARE, value=defaults["hardware"], description="Hardware"),
        "memory_gb": w.FloatText(value=defaults["memory_gb"], description="Memory (GB)"),
        "gpus": w.IntText(value=defaults["gpus"] or 1, description="GPUs", disabled=defaults["hardware"] == "cpu"),
        "latency_ms": w.FloatText(value=defaults["latency_ms"], description="Latency (ms)"),
        "dataset_size": w.Text(value="" if defaults["dataset_size"] is None else str(defaults["dataset_size"]),
                               placeholder="none", description="Dataset size"),
        "train_hours": w.Text(value="" if defaults.get("train_hours") is None else f"{defaults['train_hours']:g}",
                              placeholder="no bound", description="Hours per epoch"),
        "accuracy_priority": w.Checkbox(value=defaults["accuracy_priority"], description="Accuracy priority"),
        "model": w.Text(value=defaults.get("model") or "", placeholder="the size rules' choice",
                        description="Model (optional)"),
    }
    for name, widget in fields.items():
        widget.style, widget.layout = style, layout
        widget.add_class(f"lowres-{name.replace('_', '-')}")
    return fields


def parse_optional(text: str, kind, expected: str):
    """`kind` of a text field, or None when it is empty; what `kind` cannot read is one line naming it."""
    text = text.strip().replace(",", "").replace("_", "")
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise selector.SelectorError(f"{expected}, got {text!r}") from None


def read_inputs(fields: dict) -> dict:
    hardware = fields["hardware"].value
    dataset_size = parse_optional(fields["dataset_size"].value, int,
                                  "dataset size must be a whole number of examples (or empty for none)")
    train_hours = parse_optional(fields["train_hours"].value, float,
                                 "hours per epoch must be a number of hours (or empty for no bound)")
    return {"task": fields["task"].value, "hardware": hardware, "memory_gb": fields["memory_gb"].value,
            "latency_ms": fields["latency_ms"].value, "dataset_size": dataset_size,
            "gpus": fields["gpus"].value if hardware == "gpu" else None,
            "accuracy_priority": fields["accuracy_priority"].value, "model": fields["model"].value.strip() or None,
            "train_hours": train_hours}


def form_defaults(defaults: dict | None) -> dict:
    base = {"task": "classification", "latency_ms": 200.0, "dataset_size": None, "accuracy_priority": False}
    given = dict(defaults or {})
    if not {"hardware", "memory_gb"} <= set(given):
        base.update(selector.detect())
    return {"gpus": None, **base, **given}


def selector_form(defaults: dict | None = None, fingerprint: str | None = None, outputs=None):
    """A VBox: the input fields, a Recommend button, an inline error line, the plan. `defaults` overrides the
    detected hardware/memory/GPUs; `fingerprint` (lowres.env) lets measured results on this machine count."""
    import ipywidgets as w

    fields = build_fields(form_defaults(defaults))
    button = w.Button(description="Recommend", button_style="primary", icon="check")
    button.add_class("lowres-recommend")
    error, plan = w.HTML(), w.HTML()
    error.add_class("lowres-error")
    plan.add_class("lowres-plan-output")

    probe_button = w.Button(description="Probe this plan", icon="play",
                            tooltip="run the plan here for a few steps and requests (up to 2 minutes)")
    probe_button.add_class("lowres-probe")
    probed = w.HTML()
    probed.add_class("lowres-probe-output")

    def on_hardware(change):
        fields["gpus"].disabled = change["new"] == "cpu"

    def on_click(_=None):
        try:
            rec = selector.recommend(**read_inputs(fields), fingerprint=fingerprint, outputs=outputs)
        except selector.SelectorError as err:
            error.value, plan.value = f"<span style='{ERROR_STYLE}'>Invalid input: {escape(err)}</span>", ""
            return None
        error.value, plan.value = "", rec._repr_html_()
        return rec

    def on_probe(_=None):
        from lowres import probe

        rec = on_click()
        if rec is None:
            return None
        if fingerprint is None:
            probed.value = (f"<span style='{ERROR_STYLE}'>Cannot probe: the form is not tied to this machine "
                            f"(open it with selector_form(fingerprint=...), as the selector notebook does)</span>")
            return None
        inputs = read_inputs(fields)
        if selector.matching_fingerprint(inputs["hardware"], inputs["memory_gb"], selector.detect()) is None:
            probed.value = (f"<span style='{ERROR_STYLE}'>Cannot probe: the form describes another machine than "
                            f"this one ({escape(selector.detect())}); set hardware and memory to this machine's</span>")
            return None
        probed.value = "probing on this machine ..."
        try:
            report = probe.probe(rec, outputs=outputs, recommend_again=lambda exclude: selector.recommend(
                **inputs, fingerprint=fingerprint, outputs=outputs, exclude=exclude))
        except selector.SelectorError as err:  # ProbeError included: no plan ran, said in one line
            probed.value = f"<span style='{ERROR_STYLE}'>Probe: {escape(err)}</span>"
            return None
        probed.value = report._repr_html_()
        return report

    fields["hardware"].observe(on_hardware, names="value")
    button.on_click(on_click)
    probe_button.on_click(on_probe)
    form = w.VBox([*fields.values(), w.HBox([button, probe_button]), error, plan, probed])
    form.add_class("lowres-selector-form")
    form.fields, form.button, form.error, form.plan, form.recommend = fields, button, error, plan, on_click
    form.probe_button, form.probed, form.probe = probe_button, probed, on_probe
    return form


def escape(err) -> str:
    import html

    return html.escape(str(err))
