"""Params validation: every bad input fails with a message naming the bad key/value and the valid ones."""
import shutil

import pytest

from lowres import config
from lowres.config import ParamsError, load_params, parse_overrides

from conftest import REPO


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    """A project root with its own params/quickstart.yaml (same notebook), to test bad YAML safely."""
    (tmp_path / "params").mkdir()
    shutil.copytree(REPO / "notebooks", tmp_path / "notebooks")
    monkeypatch.setenv("LOWRES_ROOT", str(tmp_path))

    def write(text: str):
        (tmp_path / "params" / "quickstart.yaml").write_text(text)

    return write


BASE = "notebook: notebooks/00_quickstart.ipynb\nprofiles:\n  smoke: {}\n"


def test_smoke_profile_resolves_to_validated_frozen_params():
    plan = load_params("quickstart", "smoke")
    assert len(plan.runs) == 1 and plan.runs[0].model == "tiny-bert"
    with pytest.raises(Exception):
        plan.runs[0].model = "x"  # frozen


def test_unknown_study_names_valid_ones():
    with pytest.raises(ParamsError, match=r"unknown study 'quikstart' \(did you mean 'quickstart'\?\); valid: .*quickstart"):
        load_params("quikstart")


def test_unknown_profile_names_valid_ones():
    with pytest.raises(ParamsError, match=r"study 'quickstart' has no profile 'smok'; did you mean 'smoke'\? \(valid: cpu, gpu, smoke\)"):
        load_params("quickstart", "smok")


def test_misspelled_set_key_suggests_the_right_one():
    with pytest.raises(ParamsError, match=r"unknown parameter \(--set\) 'batchsize' \(did you mean 'batch_size'\?\)"):
        load_params("quickstart", "smoke", {"batchsize": 8})


def test_wrong_type_names_key_and_value():
    with pytest.raises(ParamsError, match=r"batch_size='big'"):
        load_params("quickstart", "smoke", {"batch_size": "big"})


def test_bad_choice_lists_valid_values():
    with pytest.raises(ParamsError, match=r"precision='fp8'.*'32-true'.*'bf16-mixed'"):
        load_params("quickstart", "smoke", {"precision": "fp8"})


def test_range_check_names_value_and_valid_range():
    with pytest.raises(ParamsError, match=r"batch_size=0: Input should be greater than or equal to 1"):
        load_params("quickstart", "smoke", {"batch_size": 0})


def test_cross_field_check_prints_its_message_not_the_whole_parameter_set():
    with pytest.raises(ParamsError) as err:
        load_params("quickstart", "smoke", {"max_steps": 0})
    assert str(err.value) == "invalid quickstart/smoke grid point: max_steps must be -1 (no limit) or >= 1, got 0"


def test_set_list_becomes_grid_axis_and_seed_axis_multiplies():
    plan = load_params("quickstart", "smoke", {"batch_size": [8, 16], "seed": [0, 1, 2]})
    assert len(plan.runs) == 6
    ids = plan.run_ids()
    assert len(set(ids)) == 6 and ids == load_params("quickstart", "smoke", {"batch_size": [8, 16], "seed": [0, 1, 2]}).run_ids()


def test_set_that_does_not_parse():
    with pytest.raises(ParamsError, match=r"--set 'batch_size' does not parse; expected key=value"):
        parse_overrides(["batch_size"])
    with pytest.raises(ParamsError, match=r"does not parse as YAML"):
        parse_overrides(["batch_size=[1,"])
    assert parse_overrides(["lr=3e-4", "model=minilm", "train_size=null"]) == {"lr": 3e-4, "model": "minilm", "train_size": None}


def test_empty_grid_axis(fake_root):
    fake_root(BASE + "grid: {batch_size: []}\n")
    with pytest.raises(ParamsError, match=r"grid axis 'batch_size' must be a non-empty list, got \[\]"):
        load_params("quickstart", "smoke")


def test_unknown_yaml_key_and_profile_key(fake_root):
    fake_root(BASE + "girds: {}\n")
    with pytest.raises(ParamsError, match=r"'girds' \(did you mean 'grid'\?\)"):
        load_params("quickstart", "smoke")
    fake_root("notebook: notebooks/00_quickstart.ipynb\nprofiles:\n  smoke: {sett: {}}\n")
    with pytest.raises(ParamsError, match=r"'sett'.*valid: cluster, description, grid, measure, seeds, set"):
        load_params("quickstart", "smoke")


def test_a_yaml_defaults_block_is_refused_defaults_live_in_params(fake_root):
    fake_root(BASE + "defaults: {lr: 0.1}\n")
    with pytest.raises(ParamsError, match=r"has a `defaults:` block; defaults live only in the study's Params"):
        load_params("quickstart", "smoke")


def test_unknown_key_in_a_profile_set(fake_root):
    fake_root("notebook: notebooks/00_quickstart.ipynb\nprofiles:\n  smoke: {set: {learning_rate: 0.1}}\n")
    with pytest.raises(ParamsError, match=r"'learning_rate'.*valid: seed, model, dataset"):
        load_params("quickstart", "smoke")


def test_yaml_is_loaded_safely(fake_root):
    fake_root("notebook: notebooks/00_quickstart.ipynb\nprofiles:\n  smoke: {set: {model: !!python/object/apply:os.system ['echo pwned']}}\n")
    with pytest.raises(Exception, match="could not determine a constructor"):
        load_params("quickstart", "smoke")


def test_missing_notebook_is_reported(fake_root):
    fake_root("notebook: notebooks/nope.ipynb\nprofiles:\n  smoke: {}\n")
    with pytest.raises(ParamsError, match=r"names notebook 'notebooks/nope.ipynb', which does not exist"):
        load_params("quickstart", "smoke")


@pytest.mark.parametrize("bad", ["../escape", "a/b", "Upper", "", "x" * 100])
def test_run_ids_cannot_escape_outputs(bad):
    with pytest.raises(ParamsError):
        config.check_run_id(bad)


def test_run_dir_stays_inside_outputs(outputs):
    from lowres.paths import run_dir

    assert run_dir("quickstart", "quickstart-abc").parent.parent == outputs
    with pytest.raises(ParamsError):
        run_dir("quickstart", "../../etc")


def test_a_parameter_added_later_leaves_old_run_ids_unchanged_at_its_neutral_default():
    """accumulate_grad_batches, effective_batch_size and memory_budget_gb came after results existed: at their
    neutral default a run keeps the id it had before them (so its result is still found and resumed)."""
    import hashlib
    import json

    from lowres.config import NEUTRAL_DEFAULTS, run_id, to_dict
    from lowres.studies.quickstart.params import Params

    before = {k: v for k, v in to_dict(Params()).items() if k not in NEUTRAL_DEFAULTS or v != NEUTRAL_DEFAULTS[k]}
    assert "model" in before and "accumulate_grad_batches" not in before
    digest = hashlib.sha1(json.dumps(before, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:10]
    assert run_id("quickstart", Params()) == f"quickstart-{digest}"
    assert run_id("quickstart", Params(accumulate_grad_batches=2)) != f"quickstart-{digest}"
    assert run_id("quickstart", Params(batch_size="auto")) != run_id("quickstart", Params())
