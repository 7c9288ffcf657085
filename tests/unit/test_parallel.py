"""lowres.parallel: plans per strategy, what precision really ran, DP honesty, rank merging, OOM as a finding."""
import pytest
import torch
from torch.multiprocessing.spawn import ProcessRaisedException

from lowres import parallel, train
from lowres.config import ParamsError, build_params
from lowres.studies.precision.params import Params


def test_single_plan_uses_one_process_and_the_whole_batch():
    plan = parallel.plan("single", 32, cuda_devices=0)
    assert (plan.accelerator, plan.processes, plan.devices_used) == ("cpu", 1, 1)
    assert plan.per_rank_batch_size == plan.total_batch_size == plan.loader_batch_size == 32
    assert not plan.dp_active and plan.notes == ()


def test_dp_with_fewer_than_two_gpus_is_recorded_as_inactive():
    plan = parallel.plan("dp", 32, processes=2, cuda_devices=0)
    assert not plan.dp_active and plan.devices_used == 1 and plan.total_batch_size == 32
    assert "NOT applied" in plan.notes[0] and "0 visible" in plan.notes[0]
    one_gpu = parallel.plan("dp", 32, processes=2, accelerator="gpu", cuda_devices=1)
    assert not one_gpu.dp_active and "1 visible" in one_gpu.notes[0]
    module = torch.nn.Module()
    module.net = torch.nn.Linear(2, 2)
    parallel.wrap_data_parallel(module, plan)
    assert isinstance(module.net, torch.nn.Linear)  # nothing pretends to be parallel


def test_dp_on_two_gpus_scatters_the_loader_batch():
    plan = parallel.plan("dp", 64, processes=2, accelerator="gpu", cuda_devices=2)
    assert plan.dp_active and plan.devices_used == 2 and plan.processes == 1
    assert (plan.loader_batch_size, plan.per_rank_batch_size, plan.total_batch_size) == (64, 32, 64)


@pytest.mark.parametrize("scope, per_rank, total", [("total", 16, 32), ("per_rank", 32, 64)])
def test_ddp_records_per_rank_and_total_batch(scope, per_rank, total):
    plan = parallel.plan("ddp", 32, processes=2, batch_size_scope=scope, cuda_devices=0)
    assert (plan.per_rank_batch_size, plan.total_batch_size, plan.loader_batch_size) == (per_rank, total, per_rank)
    assert plan.processes == plan.lightning_devices == 2 and plan.process_group_backend == "gloo"
    assert plan.lightning_strategy == "ddp_notebook"  # fork-based on CPU: never re-launches the caller's script
    assert plan.to_dict()["notes"][0].startswith("2 processes")


@pytest.mark.parametrize("kwargs, message", [
    (dict(strategy="fsdp", batch_size=16), "unknown strategy 'fsdp'; valid: single, dp, ddp"),
    (dict(strategy="ddp", batch_size=15), "batch_size 15 (total) does not split evenly over 2 devices"),
    (dict(strategy="ddp", batch_size=16, processes=1), "ddp needs processes >= 2, got 1"),
    (dict(strategy="single", batch_size=16, accelerator="tpu"), "unknown accelerator 'tpu'; valid: auto, cpu, gpu"),
    (dict(strategy="single", batch_size=16, accelerator="gpu"), "no CUDA device is visible"),
    (dict(strategy="ddp", batch_size=16, batch_size_scope="global"), "unknown batch_size_scope 'global'"),
    (dict(strategy="single", batch_size=0), "batch_size and processes must be >= 1"),
])
def test_bad_plans_are_refused_naming_the_valid_values(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parallel.plan(cuda_devices=0, **kwargs)


def cpu_trainer(precision):
    return train.make_trainer(precision, accelerator="cpu", devices=1)


def test_16_mixed_on_cpu_is_recorded_as_the_bf16_that_ran():
    record = parallel.precision_record(cpu_trainer("16-mixed"), "16-mixed", "cpu")
    assert record["requested"] == "16-mixed" and record["effective"] == "bf16-mixed"
    assert record["autocast_dtype"] == "bfloat16" and record["grad_scaler"] is False
    assert "replaced 16-mixed by bf16-mixed" in record["notes"][0]


@pytest.mark.parametrize("precision, effective, autocast", [
    ("32-true", "32-true", None), ("bf16-mixed", "bf16-mixed", "bfloat16"), ("tf32", "32-true", None)])
def test_precision_record_on_cpu(precision, effective, autocast):
    record = parallel.precision_record(cpu_trainer(precision), precision, "cpu")
    assert (record["effective"], record["autocast_dtype"], record["tf32_matmul"]) == (effective, autocast, False)
    assert bool(record["notes"]) == (precision == "tf32")  # tf32 on a CPU says it ran plain FP32


def test_bad_precision_is_refused_naming_the_valid_ones():
    with pytest.raises(ValueError, match="unknown precision 'fp8'; valid: 32-true, 16-mixed, bf16-mixed, tf32"):
        cpu_trainer("fp8")


def test_params_refuse_bad_combinations_before_any_work():
    with pytest.raises(ParamsError, match="batch_size 15 .total. does not split evenly over 2 devices"):
        build_params(Params, {"strategy": "ddp", "batch_size": 15})
    with pytest.raises(ParamsError, match="precision='fp16'"):
        build_params(Params, {"precision": "fp16"})
    with pytest.raises(ParamsError, match="strategy='horovod'"):
        build_params(Params, {"strategy": "horovod"})
    with pytest.raises(ParamsError, match="model 'tiny-t5' has no masked-LM form"):
        build_params(Params, {"model": "tiny-t5"})


def test_linear_lr_scaling_rule():
    assert parallel.scaled_lr(1e-4, 64, "none") == 1e-4
    assert parallel.scaled_lr(1e-4, 64, "linear", reference_batch_size=16) == pytest.approx(4e-4)
    with pytest.raises(ValueError, match="unknown lr_scaling 'sqrt'; valid: none, linear"):
        parallel.scaled_lr(1e-4, 64, "sqrt")


def test_rank_windows_merge_counts_and_keep_rank_zero_time():
    rank0 = {"wall_s": 10.0, "samples": 8, "tokens": 100, "padded_tokens": 120, "peak_gpu_mem_bytes": [5, 1],
             "gpu_energy_j": [50.0], "cpu_energy_j": 7.0, "warnings": []}
    rank1 = {**rank0, "wall_s": 9.0, "samples": 8, "tokens": 90, "peak_gpu_mem_bytes": [1, 6], "gpu_energy_j": [40.0]}
    merged = parallel.merge_rank_windows([rank0, rank1])
    assert (merged["samples"], merged["tokens"], merged["padded_tokens"]) == (16, 190, 240)
    assert merged["wall_s"] == 10.0 and merged["cpu_energy_j"] == 7.0  # rank 0's clock and machine figures
    assert merged["peak_gpu_mem_bytes"] == [5, 6] and merged["gpu_energy_j"] == [50.0, 40.0]
    assert "gathered from 2 DDP ranks" in merged["warnings"][-1]


def test_out_of_memory_is_a_finding_naming_the_batch():
    plan = parallel.plan("ddp", 64, processes=2, cuda_devices=0)
    with pytest.raises(torch.OutOfMemoryError, match="out of memory at batch size 64 .32 per device, strategy ddp."):
        with parallel.oom_as_finding(plan):
            raise MemoryError("cannot allocate")
    worker_oom = ProcessRaisedException("Traceback ...\ntorch.OutOfMemoryError: CUDA out of memory.", 1, 123)
    with pytest.raises(torch.OutOfMemoryError, match="CUDA out of memory"):
        with parallel.oom_as_finding(plan):
            raise worker_oom
    other = ProcessRaisedException("Traceback ...\nValueError: bad", 1, 123)
    with pytest.raises(ProcessRaisedException):
        with parallel.oom_as_finding(plan):
            raise other
