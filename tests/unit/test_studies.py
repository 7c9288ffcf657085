"""One source of truth for parameters: the study registry, Params as the only defaults, generated parameters
cells, notebooks that match their sources, and a run id that must match the params it names."""
import ast
import dataclasses
import importlib
import re
import sys
from pathlib import Path

import nbformat
import pytest

from lowres import config, recording, studies
from lowres.paths import params_dir, project_root

REPO = project_root()
sys.path.insert(0, str(REPO / "scripts"))
import build_notebook  # noqa: E402 - the builder is a script, not part of the package

STUDIES = studies.names()
SOURCES = sorted((REPO / "notebooks" / "src").glob("*.py"))


def cell_values(source: str) -> dict:
    """name -> literal for every assignment of a parameters cell (literals only: ast, never exec)."""
    values = {}
    for node in ast.parse(source).body:
        assert isinstance(node, ast.Assign), f"a parameters cell holds assignments only, not {ast.dump(node)[:60]}"
        values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def test_every_yaml_is_a_registered_study_with_params_and_a_headline():
    assert set(STUDIES) == {p.stem for p in params_dir().glob("*.yaml")}
    assert STUDIES[0] == "quickstart" and STUDIES.index("precision") < STUDIES.index("lora")
    for study in STUDIES:
        assert dataclasses.is_dataclass(studies.params_class(study))
        assert studies.headline(study).strategy is not None
        assert "defaults" not in config.read_study_yaml(study)


@pytest.mark.parametrize("study", STUDIES)
def test_params_defaults_equal_the_generated_parameters_cell(study):
    defaults = config.to_dict(studies.params_class(study)())
    values = cell_values(studies.parameters_cell(study))
    settings = {k: values.pop(k) for k in recording.RUN_SETTINGS}
    assert values == defaults
    assert settings == {"study": study, "profile": None, "measure": {}, "run_id": None, "output_dir": None}


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_every_notebook_matches_its_source(source):
    built = build_notebook.notebook_from_source(source)
    committed = nbformat.read(REPO / "notebooks" / f"{source.stem}.ipynb", as_version=4)
    assert [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in committed.cells] == \
        [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in built.cells], \
        f"rebuild it: python scripts/build_notebook.py {source.relative_to(REPO)} --execute"


def test_every_yaml_names_a_notebook_whose_parameters_cell_is_its_studys():
    for study in STUDIES:
        notebook = nbformat.read(REPO / config.read_study_yaml(study)["notebook"], as_version=4)
        (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
        assert config.field_names(studies.params_class(study)) == [
            k for k in cell_values(cell.source) if k not in recording.RUN_SETTINGS]
    precision, parallelism = (config.read_study_yaml(s)["notebook"] for s in ("precision", "parallelism"))
    assert precision == parallelism  # one experiment, one notebook


def test_no_notebook_defines_functions_or_retypes_its_parameters():
    for source in SOURCES:
        text = source.read_text()
        assert not re.search(r"^\s*(def|class) ", text, re.M), source.name
        assert "start_run(" not in text or re.search(r"start_run\((\"\w+\"|study), globals\(\)\)", text), source.name


def test_start_run_takes_exactly_the_params_fields_and_refuses_a_run_id_of_other_params(tmp_path):
    namespace = {**config.to_dict(studies.params_class("quickstart")()), "lr": 0.001, "pd": object(),
                 "output_dir": str(tmp_path)}
    run = recording.start_run("quickstart", namespace)
    assert run.params.lr == 0.001 and run.run_id == config.run_id("quickstart", run.params)
    assert run.measure["country_iso_code"] == "USA" and run.profile is None
    other = config.run_id("quickstart", studies.params_class("quickstart")(lr=0.002))
    with pytest.raises(config.ParamsError, match=f"run id '{other}' does not match the parameters"):
        recording.start_run("quickstart", {**namespace, "run_id": other})


def test_the_measure_block_is_validated_set_per_profile_or_with_set_and_part_of_the_run_id():
    plan = config.load_params("quickstart", "smoke", {"measure.country_iso_code": "ARG", "measure.sample_hz": 5})
    assert plan.measure.country_iso_code == "ARG" and plan.measure.sample_hz == 5.0
    default = config.load_params("quickstart", "smoke")
    assert plan.run_ids() != default.run_ids()  # metered differently: another run
    with pytest.raises(config.ParamsError, match=r"country_iso_code.*unknown country_iso_code 'ARX'"):
        config.load_params("quickstart", "smoke", {"measure.country_iso_code": "ARX"})
    with pytest.raises(config.ParamsError, match=r"energy='gpu'"):
        config.load_params("quickstart", "smoke", {"measure.energy": "gpu"})
    with pytest.raises(config.ParamsError, match="not a grid axis"):
        config.load_params("quickstart", "smoke", {"measure.energy": ["auto", "off"]})
    with pytest.raises(config.ParamsError, match=r"unknown parameter \(\S+ measure\) 'hz'"):
        config.load_params("quickstart", "smoke", {"measure.hz": 5})


TOPIC_MODULES = sorted(p for p in (REPO / "lowres").rglob("*.py") if "studies" not in p.parts)


def test_topic_modules_never_import_a_study():
    for path in TOPIC_MODULES:
        found = re.findall(r"lowres\.studies\.\w+", path.read_text())
        assert not found, f"{path.relative_to(REPO)} imports a study: {found}"


def test_studies_share_helpers_instead_of_copying_them():
    for study in STUDIES:
        for part in studies.PARTS:
            if studies.has_part(study, part):
                text = (REPO / "lowres" / "studies" / study / f"{part}.py").read_text()
                assert "def empty_axes" not in text and "def pick_device" not in text and "def pareto_front" not in text
                assert "def check_device" not in text and "cuda.is_available" not in text
    for study in STUDIES:
        importlib.import_module(f"lowres.studies.{study}.params")
    assert Path(studies.__file__).parent.joinpath("parallelism", "params.py").read_text().count("class Params") == 0
