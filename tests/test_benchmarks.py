"""The benchmarks' shared harness: machine description, RESULTS.md appends, timing."""

import importlib
import os
import pathlib
import threading
import time

import keras
import numpy as np
import pytest

from benchmarks import harness
from conftest import tiny_vae
from keras_vae import datasets
from keras_vae import precision
from keras_vae import saving

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 avx512f avx512dq avx512_bf16 amx_bf16 amx_tile amx_int8

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 avx512f avx512dq avx512_bf16 amx_bf16 amx_tile amx_int8

processor\t: 2
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 avx512f avx512dq avx512_bf16 amx_bf16 amx_tile amx_int8
"""

OLD_CPUINFO = """processor\t: 0
model name\t: Intel(R) Core(TM) i7-6700 CPU @ 3.40GHz
flags\t\t: fpu sse2 avx avx2 fma

processor\t: 1
model name\t: Intel(R) Core(TM) i7-6700 CPU @ 3.40GHz
flags\t\t: fpu sse2 avx avx2 fma
"""


def test_machine_description_parses_cpuinfo():
    info = harness.describe_machine(CPUINFO, gpus=[])
    assert info["cpu"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert info["cpu_flags"] == ["avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
    assert info["cores"] == 3
    assert info["tensorflow"] and info["keras"] == keras.__version__
    old = harness.describe_machine(OLD_CPUINFO, gpus=[])
    assert old["cpu_flags"] == [] and old["cores"] == 2
    line = harness.machine(OLD_CPUINFO, gpus=[])
    assert line.startswith("Intel(R) Core(TM) i7-6700 CPU @ 3.40GHz (")
    assert "none of avx512f" in line and "2 cores, Python" in line
    assert f"Keras {keras.__version__}" in line
    gpu = [{"name": "NVIDIA A100", "compute_capability": (8, 0)}]
    assert "2 cores, GPU NVIDIA A100, Python" in harness.machine(OLD_CPUINFO, gpus=gpu)


def test_machine_description_is_the_one_run_json_holds():
    # One description of the hardware: the benchmarks add versions to run.json's.
    gpu = [{"name": "NVIDIA A100", "compute_capability": (8, 0)}]
    info = harness.describe_machine(CPUINFO, gpus=gpu)
    hardware = precision.describe_hardware(CPUINFO, gpus=gpu)
    assert {key: info[key] for key in hardware} == hardware
    assert info["gpus"] == [{"name": "NVIDIA A100", "compute_capability": "8.0"}]


def test_machine_description_without_cpuinfo():
    info = harness.describe_machine("", gpus=[])
    assert info["cores"] == os.cpu_count() and info["cpu_flags"] == []
    assert info["cpu"]


def test_append_keeps_the_old_content_and_adds_the_section(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## Old\n\nold table\n")
    harness.append_results("## New\n\nnew table\n", path)
    assert path.read_text() == ("# Benchmark results\n\n## Old\n\nold table\n\n"
                                "## New\n\nnew table\n")
    harness.append_results("## Third\n", path)
    assert path.read_text().endswith("new table\n\n## Third\n")
    fresh = tmp_path / "sub" / "RESULTS.md"
    harness.append_results("## First\n", fresh)
    assert fresh.read_text() == "# Benchmark results\n\n## First\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["RESULTS.md", "sub"]


def test_a_crash_during_an_append_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "RESULTS.md"
    path.write_text("old\n")

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(saving.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        saving.append_text(path, "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["RESULTS.md"]


def test_appends_from_two_writers_both_land(tmp_path):
    # Two threads append 50 lines each, one by one; a lost update (both
    # reading the same old content) would drop some. flock locks belong to
    # each open() of the file, so threads contend as processes would.
    path = tmp_path / "RESULTS.md"
    path.write_text("start\n")

    def append(name):
        for i in range(50):
            saving.append_text(path, f"{name} {i}\n")

    writers = [threading.Thread(target=append, args=(name,)) for name in "ab"]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    lines = path.read_text().splitlines()
    assert lines[0] == "start"
    assert sorted(lines[1:]) == sorted(f"{name} {i}" for name in "ab" for i in range(50))


def test_epoch_timer_records_one_duration_per_epoch():
    ticks = iter([10.0, 12.5, 20.0, 21.0])
    timer = harness.EpochTimer(clock=lambda: next(ticks))
    timer.on_train_begin()
    for epoch in range(2):
        timer.on_epoch_begin(epoch)
        timer.on_epoch_end(epoch)
    assert timer.seconds == [2.5, 1.0]
    assert timer.starts == [10.0, 20.0]

    x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
    model = tiny_vae()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    timer = harness.EpochTimer()
    model.fit(datasets.make_dataset(x, batch_size=32, seed=0), epochs=3, verbose=0,
              callbacks=[timer])
    assert len(timer.seconds) == 3 and all(s > 0 for s in timer.seconds)


def test_epoch_timer_stops_before_the_budget():
    ticks = iter([0.0, 20.0, 20.0, 30.0, 30.0, 40.0, 40.0, 50.0])
    timer = harness.EpochTimer(max_minutes=0.9, clock=lambda: next(ticks))
    timer.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    timer.model.stop_training = False
    timer.on_train_begin()
    stopped_after = None
    for epoch in range(4):
        timer.on_epoch_begin(epoch)
        timer.on_epoch_end(epoch)
        if timer.model.stop_training:
            stopped_after = epoch
            break
    # Budget 54 s. After 3 epochs (40 s) a fourth as slow as the slowest after
    # the first (10 s) still fits; after 4 (50 s) a fifth would not. Counting
    # the first epoch's 20 s (compilation) would stop one epoch early.
    assert timer.seconds == [20.0, 10.0, 10.0, 10.0]
    assert stopped_after == 3


def test_cpu_seconds_reads_utime_and_stime():
    ticks = os.sysconf("SC_CLK_TCK")
    stat = ("4242 (python -m x) S 1 4242 1 0 -1 4194304 101 0 0 0 "
            f"{3 * ticks} {ticks} 0 0 20 0 1 0 88510 3133440 393")
    assert harness.cpu_seconds(stat) == pytest.approx(4.0)


def test_idle_seconds_counts_idle_intervals_inside_the_window():
    cpu = harness.ProcessCpu(threshold=0.05)
    # (wall, cpu): busy 0-1, idle 1-3, busy 3-4, idle 4-5.
    cpu.samples = [(0.0, 0.0), (1.0, 0.9), (2.0, 0.91), (3.0, 0.92), (4.0, 1.9), (5.0, 1.9)]
    assert cpu.idle_seconds() == pytest.approx(3.0)
    assert cpu.idle_seconds(1.5, 4.5) == pytest.approx(2.0)
    assert cpu.idle_seconds(0.0, 1.0) == 0.0
    with harness.ProcessCpu(interval=0.05) as live:
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            pass
    assert len(live.samples) >= 4
    assert live.idle_seconds() < 0.15


BENCHMARKS = ("anomaly_detection", "augmentation", "distributed", "evaluate_models",
              "input_pipeline", "model_family", "precision_nll", "throughput", "train_default",
              "train_mnist_classifier", "vqvae_vs_vae")


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_imports_as_a_module_and_quotes_its_command(name):
    module = importlib.import_module(f"benchmarks.{name}")
    assert f"python -m benchmarks.{name}" in module.__doc__
    source = pathlib.Path(module.__file__).read_text()
    assert "sys.path" not in source and "RESULTS.write_text" not in source
    assert callable(module.main)


def test_throughput_swaps_the_transposed_convolutions_without_changing_the_numbers():
    """The sub-pixel benchmark's models: same weights, Keras's layer, the same decoder output."""
    import keras
    import numpy as np

    import keras_vae
    from benchmarks import throughput

    keras.utils.set_random_seed(0)
    ours = keras_vae.build_vae(latent_dim=4, filters=(8, 16), hidden_units=32, seed=0)
    theirs = throughput._with_transposed_convolutions(ours, keras.layers.Conv2DTranspose)
    kinds = {type(layer).__name__ for layer in theirs.decoder.layers}
    assert "Conv2DTranspose" in kinds and "SubpixelConv2DTranspose" not in kinds
    assert "SubpixelConv2DTranspose" in {type(layer).__name__ for layer in ours.decoder.layers}
    z = np.random.default_rng(0).standard_normal((3, 4)).astype("float32")
    # In float32 ours runs Keras's computation: the same weights give the same numbers.
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(theirs.decoder(z)),
                                  keras.ops.convert_to_numpy(ours.decoder(z)))
    # The benchmark's always-sub-pixel layer computes the other way, to float32 rounding.
    always = throughput._with_transposed_convolutions(ours, throughput._AlwaysSubpixel)
    assert "_AlwaysSubpixel" in {type(layer).__name__ for layer in always.decoder.layers}
    other_way = keras.ops.convert_to_numpy(always.decoder(z))
    np.testing.assert_allclose(other_way, keras.ops.convert_to_numpy(ours.decoder(z)),
                               atol=1e-4)
    assert not np.array_equal(other_way, keras.ops.convert_to_numpy(ours.decoder(z)))


def test_vqvae_vs_vae_smoke_run_appends_one_table_with_every_column(tmp_path):
    from benchmarks import vqvae_vs_vae

    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Old\n\nold table\n")
    written = vqvae_vs_vae.main(["--smoke", "--datasets", "mnist", "--results", str(results)])
    assert written == results and [p.name for p in tmp_path.iterdir()] == ["RESULTS.md"]
    text = results.read_text()
    assert text.startswith("# Benchmark results\n\n## Old\n\nold table\n\n## VQ-VAE against "
                           "the VAE at equal training minutes")
    assert "`python -m benchmarks.vqvae_vs_vae --smoke` on " in text
    header = next(line for line in text.splitlines() if line.startswith("| dataset |"))
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    rows = {cells[1]: dict(zip(columns, cells)) for cells in (
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in text.splitlines() if line.startswith("| mnist |"))}
    assert set(rows) == {"VAE", "VQ-VAE + PixelCNN prior"}
    vae, vq = rows["VAE"], rows["VQ-VAE + PixelCNN prior"]
    assert vq["code bits per image"] == "294.0"  # 49 positions x log2 64
    assert float(vae["code bits per image"]) >= 0  # the KL rate in bits
    assert 0 < float(vq["prior NLL bits"])
    for row in (vae, vq):
        assert 0 < float(row["MSE per pixel"]) < 1 and float(row["MNIST-classifier FID"]) > 0
        assert 0 <= float(row["precision"]) <= 1 and 0 <= float(row["recall"]) <= 1
    assert vae["codebook perplexity"] == vae["collapsed"] == "-"
    # Collapse is flagged exactly when under a quarter of the 64 codes is used.
    assert (vq["collapsed"] == "**yes**") == (float(vq["fraction of codes used"]) < 0.25)
    assert vq["collapsed"] in ("**yes**", "no")
    # The prior's minutes and epochs are in brackets, inside the VQ-VAE's.
    minutes, prior_minutes = vq["training minutes (prior)"].replace(")", "").split(" (")
    assert float(prior_minutes) <= float(minutes)
    assert vq["epochs (prior)"] == "1 (1)"
    assert "keras.io VQ-VAE example" in text and "It reports no FID" in text


def test_vqvae_vs_vae_kl_rate_is_the_analytic_kl_in_bits(mnist_small):
    from benchmarks import vqvae_vs_vae
    from keras_vae import evaluation

    _, (x_test, _) = mnist_small
    x = (x_test[:20] > 0.5).astype("float32")
    vae = tiny_vae()
    # Batches of 7, 7 and 6 images; the standard normal prior's KL, summed over dimensions.
    expected = evaluation.kl_per_dimension(vae, x).sum() / np.log(2)
    assert vqvae_vs_vae.kl_rate_bits(vae, x, batch_size=7) == pytest.approx(expected, rel=1e-5)
