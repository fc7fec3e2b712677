"""Embedding: token ids of any rank, mask_zero, and the errors a user meets."""

import pytest
import torch

from keraspec.impl.flavor import use_flavor
from keraspec.impl.layers import Embedding
from keraspec.spec import SpecConfigError


def test_gathers_rows_for_indices_of_any_rank():
    layer = Embedding(5, 3)
    ids = torch.tensor([[[0, 4], [2, 2]]])
    out = layer(ids)
    assert out.shape == (1, 2, 2, 3)
    assert torch.equal(out[0, 1, 0], layer.embeddings[2]) and torch.equal(out[0, 0, 1], layer.embeddings[4])


def test_mask_zero_marks_padding():
    out = Embedding(5, 3, mask_zero=True)(torch.tensor([[0, 1, 0, 4]]))
    assert out._keras_mask.tolist() == [[False, True, False, True]]
    assert getattr(Embedding(5, 3)(torch.tensor([[0, 1]])), "_keras_mask", None) is None


@pytest.mark.parametrize("ids", [[[5]], [[-6]]])
def test_an_index_out_of_range_names_the_layer_and_the_range(ids):
    with pytest.raises(ValueError, match=r"Embedding 'emb': indices must be in \[-5, 5\) \(input_dim\)"):
        Embedding(5, 3, name="emb")(torch.tensor(ids))


def test_negative_indices_count_from_the_end_in_keras3_only():
    layer = Embedding(5, 3)
    assert torch.equal(layer(torch.tensor([[-1]]))[0, 0], layer.embeddings[4])
    with use_flavor("tf_keras"):
        tf_layer = Embedding(5, 3, name="emb")
    with pytest.raises(ValueError, match=r"indices must be in \[0, 5\)"):
        tf_layer(torch.tensor([[-1]]))


def test_a_wrong_config_names_the_parameter_and_the_rule():
    with pytest.raises(SpecConfigError, match=r"input_dim.*\[rule: input_dim.min"):
        Embedding(0, 3)


def test_input_length_is_tf_keras_only():
    assert "input_length" not in Embedding(5, 3).get_config()
    with use_flavor("tf_keras"):
        config = Embedding(5, 3, input_length=7).get_config()
    assert config["input_length"] == 7 and tuple(config["batch_input_shape"]) == (None, 7)
