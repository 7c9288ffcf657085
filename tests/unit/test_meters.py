"""Meters: nvidia-ml-py patched module-wide (fake GPUs), a fake RAPL tree, a fake codecarbon tracker
(plus one test with the real OfflineEmissionsTracker, offline)."""
from __future__ import annotations

import os
import sys
import threading
import time
import types

import pytest

from lowres.meters import Measurement, Meter, carbon, flops, nvml, rapl

HZ = 50  # fast sampling keeps the windows short


# -- fakes ----------------------------------------------------------------------------------------------------
class FakeNVMLError(Exception):
    pass


def fake_pynvml(gpus: list[dict] | None, driver_missing: bool = False) -> types.ModuleType:
    """A pynvml module: each GPU dict has name, power_w, counter (bool), energy_rate_w, used_bytes."""
    mod = types.ModuleType("pynvml")
    t0 = time.perf_counter()
    mod.NVMLError = FakeNVMLError

    def init():
        if driver_missing:
            raise FakeNVMLError("NVML Shared Library Not Found")

    def gpu(handle):
        return gpus[handle]

    def energy(handle):
        if not gpu(handle).get("counter"):
            raise FakeNVMLError("Not Supported")
        rate = gpu(handle).get("energy_rate_w", gpu(handle)["power_w"])
        return int(5e6 + rate * 1000 * (time.perf_counter() - t0))  # mJ since "driver load"

    mod.nvmlInit = init
    mod.nvmlShutdown = lambda: None
    mod.nvmlDeviceGetCount = lambda: len(gpus)
    mod.nvmlDeviceGetHandleByIndex = lambda i: i
    mod.nvmlDeviceGetName = lambda h: gpu(h)["name"]
    mod.nvmlDeviceGetUUID = lambda h: f"GPU-0000000{h}"
    mod.nvmlDeviceGetPowerUsage = lambda h: int(gpu(h)["power_w"] * 1000)
    mod.nvmlDeviceGetTotalEnergyConsumption = energy
    mod.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=gpu(h).get("used_bytes", 2**30),
                                                                  total=80 * 2**30)
    mod.nvmlSystemGetDriverVersion = lambda: b"550.54.15"
    return mod


A100 = {"name": "NVIDIA A100-SXM4-80GB", "power_w": 200.0, "counter": True, "used_bytes": 3 * 2**30}
T4 = {"name": "Tesla T4", "power_w": 50.0, "counter": False, "used_bytes": 2**30}


@pytest.fixture
def use_nvml(monkeypatch):
    def install(gpus=None, driver_missing=False):
        monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(gpus or [], driver_missing))
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return install


@pytest.fixture
def no_nvml(use_nvml):
    use_nvml(driver_missing=True)


class Hardware:
    def __init__(self, description):
        self.description = description

    def __repr__(self):  # codecarbon's hardware objects describe themselves in repr: CPU(Cpu Load), ...
        return self.description


class FakeTracker:
    """Stands in for OfflineEmissionsTracker: instant, records its options, reports fixed figures."""

    instances: list = []
    cpu_energy_kwh = 1e-6
    hardware = ["RAM()", "CPU(Cpu Load)"]

    def __init__(self, **options):
        self.options, self.started, self.stopped = options, False, False
        self._hardware = [Hardware(h) for h in self.hardware]
        FakeTracker.instances.append(self)

    def start(self):
        self.started = True

    def stop(self):
        self.stopped = True
        kwh = self.cpu_energy_kwh
        self.final_emissions_data = types.SimpleNamespace(
            emissions=kwh * 0.3, energy_consumed=kwh * 2, cpu_energy=kwh, gpu_energy=0.0, ram_energy=kwh,
            cpu_power=4.4, gpu_power=0.0, ram_power=10.0, duration=0.5,
            country_iso_code=self.options["country_iso_code"],
            tracking_mode=self.options["tracking_mode"])
        return self.final_emissions_data.emissions


@pytest.fixture(autouse=True)
def fake_codecarbon(monkeypatch):
    FakeTracker.instances = []
    monkeypatch.setattr(carbon, "tracker_class", lambda: FakeTracker)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    return FakeTracker


def write(path, value) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{value}\n")
    os.replace(tmp, path)  # atomic: the sampler thread never reads half a number


@pytest.fixture
def rapl_tree(tmp_path):
    """powercap root with package-0 (+ dram subdomain, + core which must be ignored); returns setter."""
    root = tmp_path / "powercap"
    domains = {"intel-rapl:0": "package-0", "intel-rapl:0:0": "core", "intel-rapl:0:1": "dram"}
    for folder, name in domains.items():
        (root / folder).mkdir(parents=True)
        (root / folder / "name").write_text(name + "\n")
        (root / folder / "max_energy_range_uj").write_text("1000000000\n")  # 1000 J
        (root / folder / "energy_uj").write_text("0\n")

    def set_uj(package=None, dram=None, core=None):
        for folder, value in (("intel-rapl:0", package), ("intel-rapl:0:1", dram), ("intel-rapl:0:0", core)):
            if value is not None:
                write(root / folder / "energy_uj", value)
    set_uj.root = root
    return set_uj


def sampler_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("lowres")]


def run_window(meter, name="w", seconds=0.25, **counts) -> Measurement:
    with meter.window(name, **counts) as m:
        time.sleep(seconds)
    return m


# -- NVML -----------------------------------------------------------------------------------------------------
def test_gpu_with_energy_counter(use_nvml):
    use_nvml([A100])
    m = run_window(Meter(energy="nvml", sample_hz=HZ))
    assert m.status == "ok" and m.gpu_names == ["NVIDIA A100-SXM4-80GB"] and m.gpu_indices == [0]
    assert m.sources["gpu_energy_j"] == "nvml-energy-counter"
    assert m.gpu_energy_j[0] == pytest.approx(200 * m.wall_s, rel=0.1)
    assert m.gpu_energy_sampled_j[0] == pytest.approx(m.gpu_energy_j[0], rel=0.1)
    assert m.gpu_power_avg_w == [pytest.approx(200)] and m.gpu_power_peak_w == [pytest.approx(200)]
    assert m.sources["gpu_power_avg_w"] == "nvml-power-sampling"
    assert m.peak_gpu_mem_nvml_bytes == [3 * 2**30] and m.scope["gpu_energy_j"] == "device"
    assert not [w for w in m.warnings if "apart" in w]


def test_gpu_without_counter_integrates_power(use_nvml):
    use_nvml([T4])
    m = run_window(Meter(energy="nvml", sample_hz=HZ))
    assert m.sources["gpu_energy_j"] == "nvml-power-sampling"
    assert m.gpu_energy_j[0] == pytest.approx(50 * m.wall_s, rel=0.15)
    assert m.gpu_energy_sampled_j is None  # no second source to keep


def test_mixed_gpus_label_each_device(use_nvml):
    use_nvml([A100, T4])
    m = run_window(Meter(energy="nvml", sample_hz=HZ))
    assert m.sources["gpu_energy_j"] == "nvml-energy-counter,nvml-power-sampling"
    assert len(m.gpu_energy_j) == 2 and m.gpu_energy_sampled_j[1] is None


def test_counter_and_sampled_power_disagreement_warns(use_nvml):
    use_nvml([{**A100, "energy_rate_w": 300.0}])  # the counter runs 50% ahead of the reported power
    m = run_window(Meter(energy="nvml", sample_hz=HZ))
    assert any("nvml-energy-counter" in w and "apart" in w for w in m.warnings)


def test_missing_driver_means_no_gpus(no_nvml):
    assert nvml.list_gpus() == []
    m = run_window(Meter(energy="nvml", sample_hz=HZ), seconds=0.12)
    assert m.gpu_energy_j is None and m.gpu_power_avg_w is None and m.gpu_names is None
    assert m.sources["gpu_energy_j"] == "unavailable"
    assert any("NVML init failed" in w for w in m.warnings)


def test_nvidia_ml_py_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert nvml.list_gpus() == []
    gpus, reason = nvml.open_gpus()
    assert gpus == [] and "not importable" in reason


def test_list_gpus_for_the_fingerprint(use_nvml):
    use_nvml([A100, T4])
    gpus = nvml.list_gpus()
    assert [g["name"] for g in gpus] == ["NVIDIA A100-SXM4-80GB", "Tesla T4"]
    assert gpus[1] == {"index": 1, "name": "Tesla T4", "memory_total_bytes": 80 * 2**30, "driver_version": "550.54.15"}


def test_cuda_visible_devices_selects_gpus(use_nvml, monkeypatch):
    use_nvml([A100, T4])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert nvml.visible_indices() == [1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-00000000")
    assert nvml.visible_indices() == [0]


# -- RAPL and codecarbon ---------------------------------------------------------------------------------
def test_rapl_package_and_dram_with_wraparound(rapl_tree, no_nvml, fake_codecarbon):
    rapl_tree(package=999_000_000, dram=10_000_000)
    meter = Meter(energy="rapl", rapl_root=str(rapl_tree.root), sample_hz=HZ)
    with meter.window("w") as m:
        rapl_tree(package=4_000_000, dram=12_500_000, core=500_000_000)  # package wraps at 1000 J
        time.sleep(0.12)
    assert m.cpu_energy_j == pytest.approx(5.0) and m.dram_energy_j == pytest.approx(2.5)
    assert m.sources["cpu_energy_j"] == m.sources["dram_energy_j"] == "rapl"
    assert m.scope["cpu_energy_j"] == "machine"
    assert m.co2_kg is None and m.sources["co2_kg"] == "unavailable" and not fake_codecarbon.instances


def test_rapl_missing_root_says_why(tmp_path):
    domains, reason = rapl.discover(tmp_path / "nope")
    assert domains == [] and "does not exist" in reason


def test_rapl_unreadable_counters_say_why(rapl_tree, monkeypatch):
    def denied(self):
        raise PermissionError("root only")
    monkeypatch.setattr(rapl.Domain, "read_uj", denied)
    domains, reason = rapl.discover(rapl_tree.root)
    assert domains == [] and "not readable" in reason and "root" in reason


@pytest.mark.parametrize("cc_kwh, warns", [(5.2 / 3.6e6, False), (9.0 / 3.6e6, True)])
def test_rapl_vs_codecarbon_disagreement(rapl_tree, no_nvml, fake_codecarbon, monkeypatch, cc_kwh, warns):
    monkeypatch.setattr(FakeTracker, "cpu_energy_kwh", cc_kwh)
    meter = Meter(energy="auto", rapl_root=str(rapl_tree.root), sample_hz=HZ, country_iso_code="ARG")
    with meter.window("w") as m:
        rapl_tree(package=5_000_000)
        time.sleep(0.12)
    assert m.sources["cpu_energy_j"] == "rapl" and m.cpu_energy_j == pytest.approx(5.0)
    assert m.codecarbon["cpu_energy_j"] == pytest.approx(cc_kwh * 3.6e6)
    assert m.sources["co2_kg"] == "codecarbon-estimate" and m.co2_kg == pytest.approx(cc_kwh * 0.3)
    assert any("cpu_energy_j: rapl says" in w for w in m.warnings) == warns
    tracker = fake_codecarbon.instances[0]
    assert tracker.stopped and tracker.options["country_iso_code"] == "ARG" and not tracker.options["save_to_file"]


def test_cpu_only_machine_says_energy_is_an_estimate(no_nvml, tmp_path):
    m = run_window(Meter(energy="auto", rapl_root=str(tmp_path / "none"), sample_hz=HZ), seconds=0.12)
    assert m.sources["cpu_energy_j"] == "codecarbon-estimate" and m.cpu_energy_j == pytest.approx(3.6)
    assert any("ESTIMATE" in w for w in m.warnings)
    assert m.gpu_energy_j is None and m.co2_kg > 0 and m.codecarbon["cpu_estimated"]
    assert m.codecarbon["hardware"] == "RAM(), CPU(Cpu Load)" and m.codecarbon["gpu_energy_j"] is None


def test_energy_off_measures_time_and_memory_only(no_nvml, fake_codecarbon):
    m = run_window(Meter(energy="off", sample_hz=HZ), seconds=0.12)
    assert m.wall_s > 0.1 and m.peak_cpu_rss_bytes > 0 and m.cpu_energy_j is None and m.co2_kg is None
    assert set(m.sources.values()) == {"unavailable"} and not fake_codecarbon.instances
    assert any("energy metering is off" in w for w in m.warnings)


# -- distributed scope ----------------------------------------------------------------------------------
def test_ddp_rank_measures_its_own_gpu_and_no_machine_figures(use_nvml, rapl_tree, fake_codecarbon):
    use_nvml([A100, T4])
    m1 = run_window(Meter(rank=1, world_size=2, local_rank=1, rapl_root=str(rapl_tree.root), sample_hz=HZ))
    assert m1.rank == 1 and m1.world_size == 2 and m1.gpu_indices == [1] and len(m1.gpu_energy_j) == 1
    assert m1.cpu_energy_j is None and m1.co2_kg is None and m1.sources["cpu_energy_j"] == "unavailable"
    assert any("rank 0" in w and "never sum" in w for w in m1.warnings) and not fake_codecarbon.instances
    m0 = run_window(Meter(rank=0, world_size=2, local_rank=0, rapl_root=str(rapl_tree.root), sample_hz=HZ))
    assert m0.gpu_indices == [0] and m0.sources["cpu_energy_j"] == "rapl" and len(fake_codecarbon.instances) == 1
    assert m0.scope["gpu_energy_j"] == "device" and m0.scope["cpu_energy_j"] == "machine"


def test_rank_from_launcher_environment(monkeypatch, no_nvml):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert Meter().distributed() == (3, 4, 1)


# -- lifecycle ------------------------------------------------------------------------------------------
def test_exception_stops_everything_marks_failed_and_reraises(use_nvml, rapl_tree, fake_codecarbon):
    use_nvml([A100])
    before = set(threading.enumerate())
    meter = Meter(rapl_root=str(rapl_tree.root), sample_hz=HZ)
    with pytest.raises(ZeroDivisionError):
        with meter.window("train"):
            assert sampler_threads()  # the sampler runs inside the window
            1 / 0
    m = meter.measurements["train"]
    assert m.status == "failed" and m.wall_s is not None and any("ZeroDivisionError" in w for w in m.warnings)
    assert fake_codecarbon.instances[0].stopped
    assert set(threading.enumerate()) <= before and not sampler_threads()
    assert not meter.open_windows


def test_no_thread_survives_a_window(use_nvml, rapl_tree):
    use_nvml([A100, T4])
    before = set(threading.enumerate())
    meter = Meter(rapl_root=str(rapl_tree.root), sample_hz=HZ)
    run_window(meter, seconds=0.12)
    assert set(threading.enumerate()) <= before and not sampler_threads()


def test_reentering_a_window_name_replaces_it(no_nvml):
    meter = Meter(energy="off", sample_hz=HZ)
    first = run_window(meter, "train", seconds=0.01, samples=1)
    second = run_window(meter, "train", seconds=0.01, samples=2)
    assert list(meter.measurements) == ["train"] and meter.measurements["train"] is second is not first
    assert meter.to_dict()["train"]["samples"] == 2


def test_nested_windows(no_nvml):
    meter = Meter(energy="off", sample_hz=HZ)
    with meter.window("outer") as outer:
        with meter.window("inner") as inner:
            time.sleep(0.01)
    assert outer.status == inner.status == "ok" and outer.wall_s >= inner.wall_s and not sampler_threads()


def test_short_window_and_few_samples_warn(no_nvml):
    m = run_window(Meter(energy="off", sample_hz=10), seconds=0.01)
    assert any("shorter than" in w for w in m.warnings)
    assert any("only" in w and "samples" in w for w in m.warnings)


def test_missing_figures_are_none_never_zero(no_nvml, tmp_path):
    m = run_window(Meter(energy="rapl", rapl_root=str(tmp_path / "none"), sample_hz=HZ), seconds=0.12)
    assert m.cpu_energy_j is None and m.sources["cpu_energy_j"] == "unavailable"
    assert any("cpu_energy_j" in w and "does not exist" in w for w in m.warnings)


def test_idle_baseline_reports_above_idle_energy(use_nvml):
    use_nvml([T4])
    meter = Meter(energy="nvml", sample_hz=HZ, idle_baseline_s=0.1)
    m = run_window(meter, seconds=0.2)
    assert meter.idle["seconds"] >= 0.1 and m.gpu_idle_power_w == [pytest.approx(50)]
    assert m.gpu_energy_above_idle_j[0] == pytest.approx(0, abs=0.15 * m.gpu_energy_j[0])
    assert any("cpu_idle_power_w" in w for w in m.warnings)  # no RAPL: said so


# -- derived figures, FLOPs, MFU ---------------------------------------------------------------------------
def test_derived_rates_are_computed_not_stored():
    m = Measurement(name="train", wall_s=30.0, steps=60, samples=600, tokens=60_000, epochs=2,
                    gpu_energy_j=[1000.0, None], cpu_energy_j=200.0)
    assert m.tokens_per_s == 2000 and m.samples_per_s == 20 and m.steps_per_s == 2
    assert m.epochs_per_min() == 4 and m.epochs_per_min(epochs=1) == 2
    assert m.energy_j == 1200 and m.j_per_token == pytest.approx(0.02) and m.j_per_sample == 2
    assert "tokens_per_s" not in m.to_dict() and m.to_dict(derived=True)["j_per_token"] == pytest.approx(0.02)
    assert Measurement.from_dict(m.to_dict()) == m and m.measurement is m
    assert Measurement(name="x").j_per_token is None and Measurement(name="x").epochs_per_min(3) is None


def test_training_step_flops_and_peaks():
    import torch

    model = torch.nn.Linear(8, 4)
    batch = {"x": torch.randn(2, 8)}
    n = flops.training_step_flops(model, batch, loss_fn=lambda mdl, b: mdl(b["x"]).sum())
    assert n == 2 * (2 * 2 * 8 * 4)  # forward 2*B*in*out; backward: weight grad only (x needs no grad)
    assert all(p.grad is None for p in model.parameters())
    assert flops.peak_flops_per_s("NVIDIA H200", "bf16-mixed") == pytest.approx(989.4e12)
    assert flops.peak_flops_per_s("NVIDIA L4", "16-mixed") == pytest.approx(121e12)
    assert flops.peak_flops_per_s("NVIDIA L40S", "bf16-mixed") == pytest.approx(362.1e12)
    assert flops.peak_flops_per_s("Tesla T4", "bf16-mixed") is None  # no bf16 tensor cores
    assert flops.peak_flops_per_s("cpu", "32-true") is None


def test_window_flops_and_mfu(no_nvml):
    meter = Meter(energy="off", sample_hz=HZ, precision="bf16-mixed")
    with meter.window("train", steps=10, flops_per_step=1e12) as m:
        m.device_name = "NVIDIA H200"  # what flops.device_name() reports on that machine
        time.sleep(0.02)
    assert m.flops == 1e13 and m.mfu == pytest.approx(1e13 / m.wall_s / 989.4e12)
    with meter.window("cpu", steps=10, flops_per_step=1e9) as m:
        pass
    assert m.mfu is None and m.device_name == "cpu" and any("no known peak" in w for w in m.warnings)


# -- the real codecarbon, offline ------------------------------------------------------------------------
def test_real_offline_emissions_tracker(monkeypatch, tmp_path):
    monkeypatch.undo()  # the real tracker class (and this machine's real NVML, if any)
    monkeypatch.chdir(tmp_path)
    before = set(threading.enumerate())
    m = run_window(Meter(energy="codecarbon", country_iso_code="ARG", sample_hz=HZ, rapl_root=str(tmp_path)), 0.3)
    assert m.codecarbon["country_iso_code"] == "ARG" and m.codecarbon["tracking_mode"] == "machine"
    assert m.co2_kg > 0 and m.cpu_energy_j > 0 and m.sources["cpu_energy_j"] == "codecarbon-estimate"
    assert set(threading.enumerate()) <= before and not list(tmp_path.iterdir())  # no emissions.csv
