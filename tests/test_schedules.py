import math

import numpy as np
import pytest

from keras_vae import schedules


def test_constant_rate_is_the_number():
    assert schedules.learning_rate(1e-3) == 1e-3
    assert schedules.learning_rate(2e-4, "constant", epochs=5, steps_per_epoch=7) == 2e-4


def test_cosine_decays_from_the_peak_to_zero_over_the_run():
    epochs, per_epoch, peak = 3, 5, 1.5e-3
    schedule = schedules.learning_rate(peak, "cosine", epochs=epochs,
                                       steps_per_epoch=per_epoch)
    total = epochs * per_epoch
    steps = np.arange(total + 3, dtype="float64")
    expected = peak * 0.5 * (1 + np.cos(np.pi * np.minimum(steps, total) / total))
    got = np.array([float(schedule(step)) for step in steps])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-9)
    assert got[0] == pytest.approx(peak) and got[total] == pytest.approx(0, abs=1e-9)


def test_steps_per_epoch_counts_the_last_small_batch():
    assert schedules.steps_per_epoch(60000, 128) == math.ceil(60000 / 128) == 469
    assert schedules.steps_per_epoch(256, 128) == 2
    assert schedules.steps_per_epoch(1, 128) == 1


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="schedule must be one of .*Received: schedule='step'"):
        schedules.learning_rate(1e-3, "step")
    with pytest.raises(ValueError, match="peak must be a positive number. Received: peak=0"):
        schedules.learning_rate(0.0)
    with pytest.raises(TypeError, match="peak must be a number"):
        schedules.learning_rate("1e-3")
    with pytest.raises(TypeError, match="epochs must be a positive int. Received: epochs=None"):
        schedules.learning_rate(1e-3, "cosine", steps_per_epoch=10)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        schedules.steps_per_epoch(100, 0)
