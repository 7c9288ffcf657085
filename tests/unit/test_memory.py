"""lowres.memory: parameter counts, activation accounting, peaks per method/precision, auto batch size."""
import json

import pytest
import torch

from lowres import memory


def test_bert_base_is_109_5m_parameters_and_438_mb_of_fp32_weights():
    spec = memory.model_spec("bert-base-uncased")
    assert spec.parameters == 109_482_240
    assert round(spec.parameters / 1e6, 1) == 109.5
    assert memory.parameter_summary("bert-base-uncased")["fp32_weights_mb"] == pytest.approx(438, abs=0.5)
    est = memory.estimate("bert-base-uncased", "inference", "fp32", batch_size=1, seq_len=8)
    assert est.parts["weights"] / 1e6 == pytest.approx(437.9, abs=0.1)


def instantiate_on_meta(name):
    from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

    if name.startswith("tiny-"):
        from lowres.models import tiny_configs

        config = tiny_configs()[name][1]
    else:
        values = dict(memory.KNOWN_MODELS[name])
        config = AutoConfig.for_model(values.pop("model_type"), **values)
    with torch.device("meta"):
        model = (AutoModelForSeq2SeqLM if config.model_type == "t5" else AutoModel).from_config(config)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["bert-base-uncased", "distilbert-base-uncased", "roberta-base",
                                  "sentence-transformers/all-MiniLM-L6-v2", "google/flan-t5-small", "tiny-t5"])
def test_analytic_parameter_count_matches_transformers(name):
    assert memory.model_spec(name).parameters == instantiate_on_meta(name)


def test_spec_from_transformers_config_dict_alias_and_local_dir(tmp_path):
    from transformers import BertConfig

    from_config = memory.model_spec(BertConfig())  # BertConfig() defaults = bert-base-uncased shapes
    assert from_config.parameters == memory.model_spec("bert-base-uncased").parameters
    assert memory.model_spec("distilbert").name == "distilbert-base-uncased"
    (tmp_path / "config.json").write_text(json.dumps(memory.KNOWN_MODELS["distilbert-base-uncased"]))
    assert memory.model_spec(str(tmp_path)).parameters == 66_362_880


def test_unknown_model_lists_the_names_that_work():
    with pytest.raises(memory.UnknownModel, match="bert-base-uncased"):
        memory.model_spec("no-such-model")


def saved_tensor_bytes(model, batch, seq):
    """Bytes autograd keeps for backward (storages deduplicated, parameters excluded)."""
    seen, params = {}, {p.untyped_storage().data_ptr() for p in model.parameters()}

    def pack(t):
        seen.setdefault(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        return t

    ids = torch.randint(1000, 30000, (batch, seq))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.zeros(batch, dtype=torch.long))
    return sum(v for k, v in seen.items() if k not in params)


@pytest.mark.parametrize("name,method", [("tiny-bert", "full"), ("tiny-bert", "lora"), ("tiny-distilbert", "full")])
def test_activation_accounting_matches_saved_tensors_on_cpu(name, method):
    from transformers import AutoModelForSequenceClassification

    from lowres.models import tiny_configs

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_configs()[name][1]).train()
    if method == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        targets = ["query", "value"] if name == "tiny-bert" else ["q_lin", "v_lin"]
        model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_dropout=0.1,
                                                 target_modules=targets))
    batch, seq = 4, 64
    measured = saved_tensor_bytes(model, batch, seq)
    estimated = sum(memory.activation_bytes(memory.model_spec(name), method, "fp32", "cpu", batch, seq).values())
    assert estimated == pytest.approx(measured, rel=0.08)


def test_training_peak_components():
    full = memory.estimate("bert-base-uncased", "full", "fp32", 8, 128)
    p = full.parameters
    assert full.parts["weights"] == 4 * p and full.parts["gradients"] == 4 * p
    assert full.parts["optimizer_states"] == 8 * p
    # steady state: weights + AdamW states + the larger of (activations, gradients + the step's temporary)
    assert full.peak_bytes >= 12 * p + full.parts["activations"] and full.peak_bytes >= 20 * p
    mixed = memory.estimate("bert-base-uncased", "full", "fp16", 8, 128)
    assert mixed.parts["weights"] == 4 * p  # fp32 master weights under mixed precision
    assert mixed.parts["autocast_cache"] > 0 and mixed.parts["activations"] < full.parts["activations"]
    lora = memory.estimate("bert-base-uncased", "lora", "fp16", 8, 128)
    assert lora.trainable_parameters < 0.01 * p and lora.peak_bytes < mixed.peak_bytes / 3


def test_quantized_bases_shrink_weights_and_full_ft_refuses_them():
    weights = {prec: memory.estimate("bert-base-uncased", "lora", prec, 1, 32).parts["weights"]
               for prec in ("fp32", "fp16", "int8", "int4")}
    assert weights["fp32"] > weights["fp16"] > weights["int8"] > weights["int4"]
    with pytest.raises(ValueError, match="valid: fp32, fp16, bf16"):
        memory.estimate("bert-base-uncased", "full", "int8")


def test_bad_choices_name_the_valid_ones():
    with pytest.raises(ValueError, match="unknown precision 'fp8'; valid: fp32"):
        memory.estimate("bert-base-uncased", "full", "fp8")
    with pytest.raises(ValueError, match="unknown method"):
        memory.estimate("bert-base-uncased", "adapter")
    with pytest.raises(ValueError, match="batch_size"):
        memory.estimate("bert-base-uncased", batch_size=0)


def test_peak_grows_with_batch_and_seq():
    small = memory.estimate("distilbert-base-uncased", "full", "fp16", 8, 128).peak_bytes
    assert memory.estimate("distilbert-base-uncased", "full", "fp16", 32, 128).peak_bytes > small
    assert memory.estimate("distilbert-base-uncased", "full", "fp16", 8, 512).peak_bytes > small


def test_inference_seq2seq_has_kv_cache_and_cpu_int8_keeps_fp32_embeddings():
    t5 = memory.estimate("google/flan-t5-small", "inference", "fp16", 4, 256, target_len=64)
    assert t5.parts["kv_cache"] > 0 and t5.parts["logits"] > 0
    counts = memory.model_spec("bert-base-uncased").parameter_counts()
    cpu = memory.estimate("bert-base-uncased", "inference", "int8", 1, 8, device="cpu")
    assert cpu.parts["weights"] == counts["linear"] + 4 * (counts["total"] - counts["linear"])


def test_auto_batch_size_is_the_largest_power_of_two_that_fits():
    batch, est = memory.auto_batch_size("distilbert-base-uncased", "lora", "fp16", budget_gb=4)
    assert batch in memory.BATCH_SIZES and est.fits(4)
    assert not memory.estimate("distilbert-base-uncased", "lora", "fp16", batch * 2).fits(4)
    bigger, _ = memory.auto_batch_size("distilbert-base-uncased", "lora", "fp16", budget_gb=16)
    assert bigger > batch
    capped, _ = memory.auto_batch_size("distilbert-base-uncased", "lora", "fp16", budget_gb=16, max_batch=10)
    assert capped == 8
    none, at_one = memory.auto_batch_size("bert-large-uncased", "full", "fp32", budget_gb=1)
    assert none is None and not at_one.fits(1)


def test_required_adds_fragmentation_overhead_and_margin():
    est = memory.estimate("distilbert-base-uncased", "lora", "fp16", 8, 128)
    assert est.required_bytes == pytest.approx(est.peak_bytes * 1.10 + 0.5e9)
    assert est.fits(est.required_gb / 0.9 + 0.01) and not est.fits(est.required_gb / 0.9 - 0.01)
    assert est.to_dict()["required_gb"] == pytest.approx(est.required_gb)


def test_estimate_table_for_plots():
    table = memory.estimate_table(["distilbert-base-uncased"], batch_sizes=(1, 8))
    assert set(table.columns) >= {"model", "method", "precision", "batch_size", "peak_gb", "required_gb"}
    assert len(table) == 2 * 2 * 2
