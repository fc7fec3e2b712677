"""keraspec.impl -- a Keras-compatible PyTorch implementation of the layers in the spec."""
