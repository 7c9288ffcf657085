"""Inference precisions (lowres.quantize): int8/bf16 conversions shrink the model, name their backend, keep the
predictions close to fp32; CUDA-only precisions refused clearly on a CPU; the latency/accuracy records."""
import pytest
import torch

from lowres import models, quantize
from lowres.train import predict

MODEL = "tiny-bert"
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def fp32_model():
    torch.manual_seed(0)
    return models.load_model(MODEL, "classification", num_labels=2).eval()


@pytest.fixture(scope="module")
def datamodule():
    from lowres import data
    from lowres.data.modules import ClassificationDataModule

    corpus = data.load_corpus("synthetic-sentiment", train_size=16, val_size=64, seed=0)
    dm = ClassificationDataModule(corpus, models.load_tokenizer(MODEL), batch_size=16, max_length=32, seed=0)
    dm.setup()
    return dm


def test_int8_dynamic_quantization_shrinks_the_model_and_names_its_backend(fp32_model, datamodule):
    fp32 = quantize.convert(fp32_model, "fp32", device="cpu")
    int8 = quantize.convert(fp32_model, "int8", device="cpu")
    assert int8.backend == f"torch.ao dynamic int8 ({torch.backends.quantized.engine})"
    assert int8.memory_kind == "serialized-state-dict" and int8.memory_bytes == quantize.state_dict_bytes(int8.model)
    linears = [m for m in int8.model.modules() if type(m).__name__ == "Linear"]
    assert linears and all("quantized" in type(m).__module__ for m in linears)  # every nn.Linear replaced
    # every Linear weight drops from 4 bytes to 1: the saving is at least 3/4 of the Linear weights' fp32 bytes
    linear_bytes = sum(m.weight.numel() * 4 for m in fp32_model.modules() if isinstance(m, torch.nn.Linear))
    saved = quantize.state_dict_bytes(fp32.model) - quantize.state_dict_bytes(int8.model)
    assert saved >= 0.7 * linear_bytes
    assert next(fp32_model.parameters()).dtype == torch.float32  # the original is untouched (a copy is quantized)
    loader = datamodule.val_dataloader()
    agreement = (predict(int8.model, loader)[0] == predict(fp32.model, loader)[0]).float().mean()
    assert agreement >= 0.9


def test_bf16_halves_parameter_memory(fp32_model):
    fp32, bf16 = (quantize.convert(fp32_model, p, device="cpu") for p in ("fp32", "bf16"))
    assert bf16.memory_bytes == pytest.approx(fp32.memory_bytes / 2, rel=0.01)
    assert next(bf16.model.parameters()).dtype == torch.bfloat16 and bf16.backend == "torch bf16 (cpu)"


@pytest.mark.parametrize("precisions, message", [
    (["fp8"], "unknown inference precision 'fp8'; valid: fp32, fp16, bf16, int8"),
    ([], "must name at least one of: fp32, fp16, bf16, int8"),
    (["int8", "int8"], "lists a precision twice"),
])
def test_bad_precisions_are_refused_with_the_valid_ones(precisions, message):
    with pytest.raises(ValueError, match=message):
        quantize.check_precisions(precisions, cuda=False)


def test_fp16_is_refused_on_a_cpu_naming_what_is_valid_here(fp32_model):
    with pytest.raises(ValueError, match="'fp16' needs a CUDA GPU .* valid here: fp32, bf16, int8"):
        quantize.convert(fp32_model, "fp16", device="cpu")
    quantize.check_precisions(["fp32", "fp16"], cuda=True)  # fine where there is a GPU


def test_compare_precisions_measures_fp32_first_with_accuracy_memory_and_latency(fp32_model, datamodule):
    from lowres.meters import Meter

    meter = Meter(energy="off")
    records = quantize.compare_precisions(fp32_model, datamodule, ["int8"], meter=meter, latency_batches=2,
                                          device="cpu")
    assert list(records) == ["fp32", "int8"]  # the reference is always measured, and first
    for precision, r in records.items():
        assert 0 <= r["accuracy"] <= 1 and r["precision"] == precision and r["device"] == "cpu"
        assert r["latency_ms_b1_p95"] >= r["latency_ms_b1_p50"] > 0 and r["latency_ms_b32_p50"] > 0
        assert meter.measurements[f"infer_{precision}"].samples == 64  # the window counts the evaluated examples
    assert records["int8"]["state_dict_bytes"] < records["fp32"]["state_dict_bytes"]


def test_latency_needs_at_least_one_timed_batch(fp32_model, datamodule):
    with pytest.raises(ValueError, match="batches must be >= 1, got 0"):
        quantize.latency_per_example(fp32_model, datamodule.val_set, datamodule.make_collator(None), 1, "cpu", 0)


@cuda
@pytest.mark.gpu
def test_cuda_fp16_and_bitsandbytes_int8_shrink_the_model(fp32_model, tmp_path):
    fp32_model.save_pretrained(tmp_path / "checkpoint")
    fp32 = quantize.convert(fp32_model, "fp32", device="cuda")
    fp16 = quantize.convert(fp32_model, "fp16", device="cuda")
    int8 = quantize.convert(fp32_model, "int8", device="cuda", checkpoint_dir=tmp_path / "checkpoint")
    assert fp16.memory_bytes == pytest.approx(fp32.memory_bytes / 2, rel=0.01)
    assert int8.backend == "bitsandbytes LLM.int8" and int8.memory_bytes < fp32.memory_bytes
    assert type(int8.model.classifier).__name__ == "Linear"  # the fresh head is skipped (kept in full precision)
