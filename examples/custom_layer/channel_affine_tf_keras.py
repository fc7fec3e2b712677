"""ChannelAffine for tf_keras (Keras 2): the oracle the spec's ``oracles.tf_keras`` names."""

from __future__ import annotations

from typing import Any

import tf_keras


class ChannelAffine(tf_keras.layers.Layer):
    def __init__(self, use_shift: bool = True, activation: Any = None, scale_initializer: Any = "ones",
                 shift_initializer: Any = "zeros", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(use_shift, bool):  # the spec says bool; the spec checker holds the oracle to it
            raise TypeError(f"ChannelAffine: 'use_shift' must be a bool, got {use_shift!r}")
        self.use_shift = use_shift
        self.activation = tf_keras.activations.get(activation)
        self.scale_initializer = tf_keras.initializers.get(scale_initializer)
        self.shift_initializer = tf_keras.initializers.get(shift_initializer)

    def build(self, input_shape: Any) -> None:
        channels = int(input_shape[-1])
        self.input_spec = tf_keras.layers.InputSpec(min_ndim=2, axes={-1: channels})
        self.scale = self.add_weight(name="scale", shape=(channels,), initializer=self.scale_initializer)
        self.shift = (self.add_weight(name="shift", shape=(channels,), initializer=self.shift_initializer)
                      if self.use_shift else None)
        super().build(input_shape)

    def call(self, inputs: Any) -> Any:
        out = inputs * self.scale
        if self.shift is not None:
            out = out + self.shift
        return self.activation(out)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "use_shift": self.use_shift,
                "activation": tf_keras.activations.serialize(self.activation),
                "scale_initializer": tf_keras.initializers.serialize(self.scale_initializer),
                "shift_initializer": tf_keras.initializers.serialize(self.shift_initializer)}
