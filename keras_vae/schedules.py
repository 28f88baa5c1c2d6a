"""Learning-rate schedules, one function for the command line and the benchmarks.

`learning_rate(1e-3, "cosine", epochs=32, steps_per_epoch=469)` gives what
`keras.optimizers.Adam` takes as its `learning_rate`: the number itself for a
constant rate, or a `keras.optimizers.schedules.CosineDecay` from the peak to
0 over the whole run (Loshchilov and Hutter's cosine schedule, no restarts).
"""

import math

import keras

from keras_vae.validation import check_int
from keras_vae.validation import check_number

NAMES = ("constant", "cosine")
"""The schedules `learning_rate` knows, as the command line's `--lr-schedule` offers them."""


def steps_per_epoch(num_images, batch_size):
    """Returns the optimizer steps of one pass over `num_images` (the last batch may be small).

    Args:
        num_images: Images in one pass, a positive int.
        batch_size: Images per step, a positive int.
    """
    check_int("num_images", num_images)
    check_int("batch_size", batch_size)
    return math.ceil(num_images / batch_size)


def learning_rate(peak, schedule="constant", *, epochs=None, steps_per_epoch=None):
    """Returns Adam's learning rate: `peak`, or a cosine decay from `peak` to 0.

    Args:
        peak: The learning rate (the starting one, for `"cosine"`); a
            positive number.
        schedule: `"constant"` or `"cosine"`.
        epochs: Epochs of the run; needed for `"cosine"`.
        steps_per_epoch: Optimizer steps per epoch (see `steps_per_epoch`);
            needed for `"cosine"`.

    Returns:
        A float, or a `keras.optimizers.schedules.CosineDecay` reaching 0 after
        `epochs * steps_per_epoch` steps.

    Example:

    ```python
    from keras_vae import schedules

    rate = schedules.learning_rate(
        1e-3, "cosine", epochs=32,
        steps_per_epoch=schedules.steps_per_epoch(60000, 128))
    model.compile(optimizer=keras.optimizers.Adam(rate))
    ```

    Raises:
        TypeError: `peak` is not a number.
        ValueError: `peak` is not positive and finite, `schedule` is unknown,
            or `"cosine"` lacks positive int `epochs` and `steps_per_epoch`.

    Reference:
        [Loshchilov and Hutter, 2017](https://arxiv.org/abs/1608.03983)
    """
    peak = check_number("peak", peak)
    if peak == 0:
        raise ValueError(f"peak must be a positive number. Received: peak={peak!r}")
    if schedule not in NAMES:
        raise ValueError(
            f"schedule must be one of {list(NAMES)}. Received: schedule={schedule!r}"
        )
    if schedule == "constant":
        return peak
    check_int("epochs", epochs)
    check_int("steps_per_epoch", steps_per_epoch)
    return keras.optimizers.schedules.CosineDecay(peak, epochs * steps_per_epoch)
