"""Keras 3 on the torch backend, presented through keraspec's implementation contract.

Point the suite at it to measure Keras's own torch backend against the oracle::

    KERAS_BACKEND=torch pytest conformance/tests --impl keraspec.conformance.adapters.keras_torch --corpus default

Keras picks its backend once per process, so this runs in a process of its own; its keras3
oracle results come from the recorded corpus (the live keras3 oracle needs the TensorFlow backend).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

if os.environ.get("KERAS_BACKEND") != "torch":
    raise ImportError("keraspec.conformance.adapters.keras_torch needs KERAS_BACKEND=torch set before Python starts")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


class KerasTorchLayer:
    """Wraps one Keras 3 layer (torch backend); the class attribute ``keras_class`` says which."""

    keras_class: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.layer = self.keras_class(*args, **kwargs)

    @property
    def built(self) -> bool:
        return bool(self.layer.built)

    def build(self, input_shape: Any) -> None:
        self.layer.build(input_shape)

    def to(self, device: Any) -> KerasTorchLayer:
        # Keras places its variables on its own default device; inputs follow it.
        return self

    def __call__(self, inputs: Any, training: bool = False, mask: Any = None) -> Any:
        if mask is not None:
            # Keras takes masks from the tensor, as a previous layer would have left them.
            first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
            first._keras_mask = mask
        return self.layer(inputs, training=training)

    @property
    def weight_names(self) -> list[str]:
        return [w.name for w in self.layer.weights]

    def get_weights(self) -> list[np.ndarray]:
        return self.layer.get_weights()

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.layer.set_weights(weights)

    def keras_weights(self) -> list[torch.Tensor]:
        return [w.value for w in self.layer.weights]

    def weight_to_keras(self, weight: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return value  # Keras stores every weight in its own layout

    def apply_constraints(self) -> None:
        """Project the weights with their constraints, as Keras's optimizer does after a step."""
        for variable in self.layer.trainable_weights:
            if variable.constraint is not None:
                variable.assign(variable.constraint(variable))

    def get_config(self) -> dict[str, Any]:
        return self.layer.get_config()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> KerasTorchLayer:
        obj = cls.__new__(cls)
        obj.layer = cls.keras_class.from_config(config)
        return obj

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.layer.compute_output_shape(input_shape)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return self.layer.compute_mask(inputs, mask)

    @property
    def losses(self) -> list[torch.Tensor]:
        return list(self.layer.losses)


@contextlib.contextmanager
def use_flavor(name: str) -> Iterator[None]:
    """The contract's semantics switch.  Keras 3 on torch has Keras 3's semantics only, and no switch
    to Keras 2's: against tf_keras it is measured as it is, and where Keras 2 defines things
    differently (hard_sigmoid, defaults) the comparison shows that difference."""
    if name not in ("keras3", "tf_keras"):
        raise ValueError(f"unknown flavour {name!r}")
    yield


_classes: dict[str, type[KerasTorchLayer]] = {}


def __getattr__(name: str) -> type[KerasTorchLayer]:
    """``keras_torch.Dense`` etc.: a contract wrapper for every layer class Keras 3 has."""
    if name in _classes:
        return _classes[name]
    keras_class = getattr(keras.layers, name, None)
    if not (isinstance(keras_class, type) and issubclass(keras_class, keras.layers.Layer)):
        raise AttributeError(name)
    wrapper = type(name, (KerasTorchLayer,), {"keras_class": keras_class, "__module__": __name__})
    _classes[name] = wrapper
    return wrapper
