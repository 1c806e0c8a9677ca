"""Start a wider network from a trained narrower one: the same function, more room (Net2WiderNet).

Why: a ``compact_wide`` trained from scratch on FER2013-sized data takes days
on a CPU; widened from a trained ``compact`` it starts where that network is
(same predictions) and only the extra room has to learn (Chen, Goodfellow and
Shlens, "Net2Net", ICLR 2016).

How, for layers with the same names in both models: each weight array is tiled
up to the wide shape. Output channel ``j`` of a wide layer is channel ``j mod
C`` of the narrow one (conv kernels' last axis, BatchNorm's vectors, biases);
a kernel's input axis is tiled the same way and divided by its factor, so the
next layer sums each duplicated channel back to the original once. Conv
(3, 3, Cin, Cout) → (3, 3, 2·Cin, 2·Cout); BN (C,) → (2·C,); the head's Dense
(8w, K) → (16w, K). Small noise on the kernels breaks the copies' symmetry
(dropout, which masks each copy separately, does the rest in training).
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError


def widen_array(narrow: np.ndarray, shape: tuple[int, ...], *, is_kernel: bool) -> np.ndarray:
    """``narrow`` tiled up to ``shape``; a kernel's input axis (−2) divided by its repeat factor."""
    if narrow.ndim != len(shape) or any(t % n for n, t in zip(narrow.shape, shape)):
        raise ModelError(f"cannot widen weights of shape {narrow.shape} to {tuple(shape)}: not whole multiples")
    reps = tuple(t // n for n, t in zip(narrow.shape, shape))
    wide = np.tile(narrow, reps)
    if is_kernel and narrow.ndim >= 2:
        wide = wide / reps[-2]  # each input channel now arrives reps[-2] times
    return wide.astype(narrow.dtype)


def widen_into(source, target, *, noise: float = 0.01, seed: int = 0) -> None:
    """Copy ``source``'s weights into the wider ``target``, layer by layer by name.

    ``noise``: kernels get Gaussian noise of ``noise`` × that kernel's own
    standard deviation (0 keeps the function exactly). Raises
    :class:`ModelError` when a weighted layer of ``target`` has no namesake in
    ``source`` or the shapes are not whole multiples.
    """
    rng = np.random.default_rng(seed)
    names = {layer.name for layer in source.layers}
    for layer in target.layers:
        if not layer.weights:
            continue
        if layer.name not in names:
            raise ModelError(f"cannot widen: the source model has no layer '{layer.name}'")
        new = []
        for var, narrow in zip(layer.weights, source.get_layer(layer.name).get_weights()):
            is_kernel = var.path.endswith("kernel")
            wide = widen_array(narrow, tuple(var.shape), is_kernel=is_kernel)
            if is_kernel and noise > 0:
                wide = wide + rng.normal(0.0, noise * float(narrow.std()), wide.shape).astype(wide.dtype)
            new.append(wide)
        layer.set_weights(new)
