"""Unit tests of keraspec.impl.recurrent: gate layouts against hand-computed steps, both execution
paths (torch's fused kernels and the general loop) against both oracles, masks with holes,
go_backwards, initial_state, stateful layers and reset_states, time_major, stacked and user cells,
dropout masks per sequence, and Embedding(mask_zero) -> LSTM."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from keraspec.impl import recurrent
from keraspec.impl.core import Embedding
from keraspec.impl.flavor import use_flavor
from keraspec.impl.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell, StackedRNNCells

ORACLES = ("keras3", "tf_keras")
LAYERS = {"SimpleRNN": SimpleRNN, "GRU": GRU, "LSTM": LSTM}
#: float32 through a few steps of tanh / sigmoid: rounding only (the conformance policy's recurrence
#: class, 16 ulps per step, for up to 8 steps and a margin for the matmul order).
ATOL = 2e-5


@pytest.fixture(params=["fused", "loop"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test with the fused path allowed, then with the general loop forced."""
    monkeypatch.setattr(recurrent, "FUSED", request.param == "fused")
    yield request.param


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _oracle_layer(oracle_module: Any, name: str, config: dict[str, Any], shape: tuple[int, ...], seed: int = 1) -> Any:
    """The oracle's layer built on ``shape`` with random weights (so every bias entry matters)."""
    layer = getattr(oracle_module.layers, name)(**config)
    layer.build((None, *shape[1:]))
    rng = _rng(seed)
    layer.set_weights([rng.uniform(-0.7, 0.7, w.shape).astype(np.float32) for w in layer.get_weights()])
    return layer


def _ours(name: str, config: dict[str, Any], oracle_layer: Any, flavor: str, shape: tuple[int, ...]) -> Any:
    with use_flavor(flavor):
        layer = LAYERS[name](**config)
    layer.build(shape)
    layer.set_weights(oracle_layer.get_weights())
    return layer


def _as_list(out: Any) -> list[np.ndarray]:
    outs = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(o.detach().numpy() if isinstance(o, torch.Tensor) else o) for o in outs]


def _holes_mask(batch: int, steps: int, seed: int = 3) -> np.ndarray:
    mask = _rng(seed).random((batch, steps)) > 0.4
    mask[:, 0] = True
    mask[0, -1] = False  # a masked last step: the last output is carried
    mask[1, 1:3] = False  # a hole in the middle
    return mask


# -- gate layouts by hand --------------------------------------------------------------------------
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _cell_with(cell: Any, weights: list[np.ndarray]) -> Any:
    cell.build((None, weights[0].shape[0]))
    cell.set_weights(weights)
    return cell


def test_lstm_gate_layout_by_hand() -> None:
    rng = _rng(10)
    units, features = 3, 2
    kernel, recurrent_kernel, bias = (rng.normal(size=s).astype(np.float64) for s in
                                      ((features, 4 * units), (units, 4 * units), (4 * units,)))
    x, h, c = rng.normal(size=(1, features)), rng.normal(size=(1, units)), rng.normal(size=(1, units))
    z = x @ kernel + h @ recurrent_kernel + bias
    i, f, g, o = (z[:, k * units:(k + 1) * units] for k in range(4))  # Keras's [i, f, c, o]
    c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h_new = _sigmoid(o) * np.tanh(c_new)
    cell = _cell_with(LSTMCell(units, dtype="float64"), [kernel, recurrent_kernel, bias])
    out, (h_got, c_got) = cell(torch.tensor(x), [torch.tensor(h), torch.tensor(c)])
    np.testing.assert_allclose(out.detach().numpy(), h_new, rtol=1e-12)
    np.testing.assert_allclose(h_got.detach().numpy(), h_new, rtol=1e-12)
    np.testing.assert_allclose(c_got.detach().numpy(), c_new, rtol=1e-12)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_gate_layout_by_hand(reset_after: bool) -> None:
    rng = _rng(11)
    units, features = 3, 2
    kernel = rng.normal(size=(features, 3 * units))
    recurrent_kernel = rng.normal(size=(units, 3 * units))
    bias = rng.normal(size=(2, 3 * units) if reset_after else (3 * units,))
    x, h = rng.normal(size=(1, features)), rng.normal(size=(1, units))
    input_bias = bias[0] if reset_after else bias
    xz, xr, xh = np.split(x @ kernel + input_bias, 3, axis=1)  # Keras's [z, r, h]
    uz, ur, uh = np.split(recurrent_kernel, 3, axis=1)
    if reset_after:
        bz, br, bh = np.split(bias[1], 3)
        z, r = _sigmoid(xz + h @ uz + bz), _sigmoid(xr + h @ ur + br)
        hh = np.tanh(xh + r * (h @ uh + bh))
    else:
        z, r = _sigmoid(xz + h @ uz), _sigmoid(xr + h @ ur)
        hh = np.tanh(xh + (r * h) @ uh)  # the reset gate before the matmul
    want = z * h + (1 - z) * hh
    cell = _cell_with(GRUCell(units, reset_after=reset_after, dtype="float64"), [kernel, recurrent_kernel, bias])
    out, (h_got,) = cell(torch.tensor(x), [torch.tensor(h)])
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(h_got.detach().numpy(), want, rtol=1e-12)
    assert cell.weight_names == ["kernel", "recurrent_kernel", "bias"]
    assert [w.shape for w in cell.get_weights()] == [(2, 9), (3, 9), bias.shape]


def test_simple_rnn_step_by_hand() -> None:
    rng = _rng(12)
    kernel, recurrent_kernel, bias = rng.normal(size=(2, 3)), rng.normal(size=(3, 3)), rng.normal(size=(3,))
    x, h = rng.normal(size=(2, 2)), rng.normal(size=(2, 3))
    cell = _cell_with(SimpleRNNCell(3, dtype="float64"), [kernel, recurrent_kernel, bias])
    out, _ = cell(torch.tensor(x), [torch.tensor(h)])
    np.testing.assert_allclose(out.detach().numpy(), np.tanh(x @ kernel + bias + h @ recurrent_kernel), rtol=1e-12)


def test_gru_fused_weights_follow_torch_gate_order() -> None:
    """The fused GRU re-lays Keras's [z, r, h] columns as torch's [r, z, n] rows; the result equals
    torch.nn.GRU given the same re-laid weights."""
    torch.manual_seed(0)
    layer = GRU(4, return_sequences=True)
    x = torch.randn(3, 6, 5)
    layer(x)
    reference = torch.nn.GRU(5, 4, batch_first=True)
    w_ih, w_hh, b_ih, b_hh = layer._weights_for_torch()
    with torch.no_grad():
        reference.weight_ih_l0.copy_(w_ih)
        reference.weight_hh_l0.copy_(w_hh)
        reference.bias_ih_l0.copy_(b_ih)
        reference.bias_hh_l0.copy_(b_hh)
        torch.testing.assert_close(layer(x), reference(x)[0])


# -- against the oracles, both paths -----------------------------------------------------------------
CONFIGS = [
    ("LSTM", {}),
    ("LSTM", {"unit_forget_bias": False, "use_bias": False}),
    ("GRU", {}),
    ("GRU", {"reset_after": False}),
    ("GRU", {"use_bias": False}),
    ("SimpleRNN", {}),
    ("SimpleRNN", {"activation": "relu"}),
    ("LSTM", {"recurrent_activation": "hard_sigmoid"}),  # each oracle's own hard_sigmoid, the loop
]


@pytest.mark.parametrize("oracle_name", ORACLES)
@pytest.mark.parametrize("name,config", CONFIGS)
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_matches_oracle(oracle: Any, oracle_name: str, name: str, config: dict[str, Any], go_backwards: bool,
                        masked: bool, path: str) -> None:
    """Outputs, states and output mask equal the oracle's, with masks holed anywhere."""
    module = oracle(oracle_name)
    config = {**config, "units": 4, "return_sequences": True, "return_state": True, "go_backwards": go_backwards}
    shape = (3, 6, 5)
    x = _rng(5).normal(size=shape).astype(np.float32)
    mask = _holes_mask(3, 6) if masked else None
    theirs_layer = _oracle_layer(module, name, config, shape)
    ours_layer = _ours(name, config, theirs_layer, oracle_name, shape)
    want = _as_list(theirs_layer(x, mask=mask))
    got_out = ours_layer(torch.tensor(x), mask=None if mask is None else torch.tensor(mask))
    got = _as_list(got_out)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=ATOL, rtol=ATOL)
    if masked:
        assert np.array_equal(got_out[0]._keras_mask.numpy(), mask)


@pytest.mark.parametrize("oracle_name", ORACLES)
@pytest.mark.parametrize("name", ["LSTM", "GRU"])
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
def test_masked_last_output_and_zero_output(oracle: Any, oracle_name: str, name: str, zero_output_for_mask: bool,
                                            path: str) -> None:
    """return_sequences=False under a mask whose last steps are masked: the carried output (or zeros)."""
    module = oracle(oracle_name)
    config = {"units": 3, "zero_output_for_mask": zero_output_for_mask}
    shape = (2, 5, 4)
    x = _rng(6).normal(size=shape).astype(np.float32)
    mask = np.array([[1, 1, 0, 1, 0], [1, 0, 0, 0, 0]], dtype=bool)
    theirs_layer = _oracle_layer(module, name, config, shape)
    ours_layer = _ours(name, config, theirs_layer, oracle_name, shape)
    want = np.asarray(theirs_layer(x, mask=mask))
    got = ours_layer(torch.tensor(x), mask=torch.tensor(mask)).detach().numpy()
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=ATOL)


@pytest.mark.parametrize("oracle_name", ORACLES)
@pytest.mark.parametrize("name", ["LSTM", "GRU", "SimpleRNN"])
def test_gradients_match_oracle(oracle: Any, tf: Any, oracle_name: str, name: str, path: str) -> None:
    module = oracle(oracle_name)
    config = {"units": 3, "return_sequences": True}
    shape = (2, 5, 4)
    x = _rng(7).normal(size=shape).astype(np.float32)
    theirs_layer = _oracle_layer(module, name, config, shape)
    ours_layer = _ours(name, config, theirs_layer, oracle_name, shape)
    cotangent = _rng(8).normal(size=(2, 5, 3)).astype(np.float32)
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(theirs_layer(xv) * cotangent)
    want = tape.gradient(loss, [xv, *theirs_layer.trainable_weights])
    xt = torch.tensor(x, requires_grad=True)
    loss_t = (ours_layer(xt) * torch.tensor(cotangent)).sum()
    got = torch.autograd.grad(loss_t, [xt, *ours_layer.keras_weights()])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), np.asarray(w), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("oracle_name", ORACLES)
@pytest.mark.parametrize("name", ["LSTM", "GRU", "SimpleRNN"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
def test_right_padded_mask_matches_oracle(oracle: Any, tf: Any, oracle_name: str, name: str, return_sequences: bool,
                                          zero_output_for_mask: bool, path: str) -> None:
    """Right padding (the packed-sequence form of the fused path), with an initial state."""
    module = oracle(oracle_name)
    config = {"units": 3, "return_sequences": return_sequences, "return_state": True,
              "zero_output_for_mask": zero_output_for_mask}
    shape = (4, 6, 5)
    rng = _rng(21)
    x = rng.normal(size=shape).astype(np.float32)
    mask = np.arange(6)[None, :] < np.array([6, 2, 4, 1])[:, None]
    states = [rng.normal(size=(4, 3)).astype(np.float32) for _ in range(2 if name == "LSTM" else 1)]
    theirs_layer = _oracle_layer(module, name, config, shape)
    ours_layer = _ours(name, config, theirs_layer, oracle_name, shape)
    want = _as_list(theirs_layer(x, mask=mask, initial_state=[tf.constant(s) for s in states]))
    got = _as_list(ours_layer(torch.tensor(x), mask=torch.tensor(mask), initial_state=[torch.tensor(s) for s in states]))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=ATOL, rtol=ATOL)


def test_right_padded_mask_takes_the_packed_path(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = GRU(3, return_sequences=True)
    x = torch.randn(2, 4, 3)
    layer(x)
    calls: list[str] = []
    original = GRU._run_packed
    monkeypatch.setattr(GRU, "_run_packed", lambda self, *a: calls.append("packed") or original(self, *a))
    layer(x, mask=torch.tensor([[True, True, False, False], [True, True, True, True]]))
    layer(x, mask=torch.tensor([[True, False, True, False], [True, True, True, True]]))  # a hole: the loop
    assert calls == ["packed"]


def test_fused_and_loop_paths_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """The switch really selects the path: fused for a plain LSTM, the loop when it is off or masked."""
    layer = LSTM(3)
    x = torch.randn(2, 4, 3)
    layer(x)
    calls: list[str] = []
    original_fused = LSTM._run_fused
    monkeypatch.setattr(LSTM, "_run_fused", lambda self, *a: calls.append("fused") or original_fused(self, *a))
    original_loop = RNN._run_loop
    monkeypatch.setattr(RNN, "_run_loop", lambda self, *a: calls.append("loop") or original_loop(self, *a))
    layer(x)
    layer(x, mask=torch.tensor([[True, False, True, True], [True, True, True, True]]))
    monkeypatch.setattr(recurrent, "FUSED", False)
    layer(x)
    assert calls == ["fused", "loop", "loop"]


# -- initial_state, stateful, time_major -----------------------------------------------------------
@pytest.mark.parametrize("oracle_name", ORACLES)
@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_initial_state_call_argument(oracle: Any, tf: Any, oracle_name: str, name: str, path: str) -> None:
    module = oracle(oracle_name)
    config = {"units": 3, "return_state": True}
    shape = (2, 4, 5)
    rng = _rng(9)
    x = rng.normal(size=shape).astype(np.float32)
    states = [rng.normal(size=(2, 3)).astype(np.float32) for _ in range(2 if name == "LSTM" else 1)]
    theirs_layer = _oracle_layer(module, name, config, shape)
    ours_layer = _ours(name, config, theirs_layer, oracle_name, shape)
    want = _as_list(theirs_layer(x, initial_state=[tf.constant(s) for s in states]))
    got = _as_list(ours_layer(torch.tensor(x), initial_state=[torch.tensor(s) for s in states]))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=ATOL, rtol=ATOL)
    with pytest.raises(ValueError, match="initial state 0 must have shape"):
        ours_layer(torch.tensor(x), initial_state=[torch.zeros(3, 3) for _ in states])


@pytest.mark.parametrize("name", ["LSTM", "GRU", "SimpleRNN"])
def test_stateful_carries_state_and_resets(name: str, path: str) -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 6, 3)
    stateful = LAYERS[name](4, stateful=True, return_sequences=True)
    whole = LAYERS[name](4, return_sequences=True)
    whole(x)
    stateful.build((2, 6, 3))
    stateful.set_weights(whole.get_weights())
    first, second = stateful(x[:, :3]), stateful(x[:, 3:])
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole(x))
    stateful.reset_states()
    torch.testing.assert_close(stateful(x[:, :3]), first)
    values = [np.full((2, 4), 0.5, np.float32) for _ in range(2 if name == "LSTM" else 1)]
    stateful.reset_states(values)
    torch.testing.assert_close(stateful(x), whole(x, initial_state=[torch.tensor(v) for v in values]))
    with pytest.raises(ValueError, match=r"stateful.*expected 2, got 3"):
        stateful(torch.randn(3, 6, 3))
    with pytest.raises(ValueError, match=r"state 0 expects shape \(batch, 4\)"):
        stateful.reset_states([np.zeros((2, 5))] * len(values))


def test_stateful_matches_tf_keras(tf_keras: Any) -> None:
    shape = (2, 3, 4)
    x = _rng(13).normal(size=shape).astype(np.float32)
    theirs = tf_keras.layers.LSTM(3, stateful=True)
    theirs.build(shape)
    theirs.set_weights([_rng(14).uniform(-0.7, 0.7, w.shape).astype(np.float32) for w in theirs.get_weights()])
    ours = _ours("LSTM", {"units": 3, "stateful": True}, theirs, "tf_keras", shape)
    for _ in range(2):
        np.testing.assert_allclose(ours(torch.tensor(x)).detach().numpy(), np.asarray(theirs(x)), atol=ATOL)
    theirs.reset_states()
    ours.reset_states()
    np.testing.assert_allclose(ours(torch.tensor(x)).detach().numpy(), np.asarray(theirs(x)), atol=ATOL)


def test_stateful_needs_a_static_batch() -> None:
    with pytest.raises(ValueError, match="batch size must be static"):
        LSTM(2, stateful=True).build((None, 3, 4))


@pytest.mark.parametrize("return_sequences", [False, True])
def test_time_major_matches_tf_keras(tf_keras: Any, return_sequences: bool, path: str) -> None:
    config = {"units": 3, "time_major": True, "return_sequences": return_sequences}
    x = _rng(15).normal(size=(5, 2, 4)).astype(np.float32)  # (time, batch, features)
    theirs = tf_keras.layers.GRU(**config)
    theirs.build((None, 2, 4))
    theirs.set_weights([_rng(16).uniform(-0.7, 0.7, w.shape).astype(np.float32) for w in theirs.get_weights()])
    ours = _ours("GRU", config, theirs, "tf_keras", (5, 2, 4))
    mask = np.ones((5, 2), bool)
    mask[3, 1] = False
    for m in (None, mask):
        want = np.asarray(theirs(x, mask=m))
        got = ours(torch.tensor(x), mask=None if m is None else torch.tensor(m)).detach().numpy()
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=ATOL)
    assert ours.compute_output_shape((5, 2, 4)) == tuple(theirs.compute_output_shape((5, 2, 4)))


def test_time_major_is_tf_keras_only() -> None:
    with pytest.raises(TypeError, match="time_major"):
        LSTM(2, time_major=True)


# -- Embedding(mask_zero) -> LSTM, stacked and user cells --------------------------------------------
@pytest.mark.parametrize("oracle_name", ORACLES)
def test_embedding_mask_zero_into_lstm(oracle: Any, oracle_name: str, path: str) -> None:
    module = oracle(oracle_name)
    ids = np.array([[3, 0, 5, 2, 0, 0], [1, 4, 0, 0, 7, 0]], dtype=np.int32)  # holes, not only padding
    theirs_embedding = module.layers.Embedding(8, 5, mask_zero=True)
    theirs_embedding.build((None, 6))
    theirs_embedding.set_weights([_rng(17).normal(size=(8, 5)).astype(np.float32)])
    theirs_lstm = _oracle_layer(module, "LSTM", {"units": 3, "return_sequences": True}, (2, 6, 5))
    want = theirs_lstm(theirs_embedding(ids))
    with use_flavor(oracle_name):
        embedding = Embedding(8, 5, mask_zero=True)
    embedding.build((None, 6))
    embedding.set_weights(theirs_embedding.get_weights())
    ours_lstm = _ours("LSTM", {"units": 3, "return_sequences": True}, theirs_lstm, oracle_name, (2, 6, 5))
    got = ours_lstm(embedding(torch.tensor(ids, dtype=torch.int64)))
    np.testing.assert_allclose(got.detach().numpy(), np.asarray(want), atol=ATOL, rtol=ATOL)
    assert np.array_equal(got._keras_mask.numpy(), ids != 0)


def test_stacked_cells_match_keras3(keras3: Any) -> None:
    x = _rng(18).normal(size=(2, 4, 3)).astype(np.float32)
    theirs = keras3.layers.RNN([keras3.layers.LSTMCell(4), keras3.layers.GRUCell(2)], return_state=True)
    theirs.build((None, 4, 3))
    weights = [_rng(19).uniform(-0.7, 0.7, w.shape).astype(np.float32) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours = RNN([LSTMCell(4), GRUCell(2)], return_state=True)
    ours.build((2, 4, 3))
    assert ours.weight_names == ["kernel", "recurrent_kernel", "bias"] * 2
    ours.set_weights(weights)
    want = theirs(x)
    got = ours(torch.tensor(x))
    # Keras 3: [output, [h1, c1], [h2]] (each built-in cell's initial state is a list)
    np.testing.assert_allclose(got[0].detach().numpy(), np.asarray(want[0]), atol=ATOL)
    np.testing.assert_allclose(got[1][1].detach().numpy(), np.asarray(want[1][1]), atol=ATOL)
    np.testing.assert_allclose(got[2][0].detach().numpy(), np.asarray(want[2][0]), atol=ATOL)
    assert ours.compute_output_shape((2, 4, 3)) == [(2, 2), [(2, 4), (2, 4)], (2, 2)]


class MinimalCell(torch.nn.Module):
    """A user cell following Keras's cell contract only (state_size, output_size, call)."""

    state_size = 2
    output_size = 2

    def call(self, inputs: torch.Tensor, states: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        output = inputs[:, :2] + 0.5 * states[0]
        return output, [output]

    def forward(self, inputs: torch.Tensor, states: list[torch.Tensor]) -> Any:
        return self.call(inputs, states)


def test_user_cell_with_mask() -> None:
    x = torch.arange(12, dtype=torch.float32).reshape(1, 4, 3)
    mask = torch.tensor([[True, False, True, False]])
    out = RNN(MinimalCell(), return_sequences=True)(x, mask=mask)
    h, expected = torch.zeros(1, 2), []
    for t in range(4):
        if mask[0, t]:
            h = x[:, t, :2] + 0.5 * h
        expected.append(h)
    torch.testing.assert_close(out, torch.stack(expected, dim=1))


def test_cell_contract_surface() -> None:
    cell = LSTMCell(3)
    assert cell.state_size == [3, 3] and cell.output_size == 3
    states = cell.get_initial_state(batch_size=2)
    assert [tuple(s.shape) for s in states] == [(2, 3), (2, 3)]
    out, new = cell(torch.randn(2, 5), states)
    assert out.shape == (2, 3) and len(new) == 2
    stacked = StackedRNNCells([SimpleRNNCell(2), GRUCell(3)])
    assert stacked.state_size == [2, 3] and stacked.output_size == 3
    clone = type(stacked).from_config(stacked.get_config())
    assert [type(c).__name__ for c in clone.cells] == ["SimpleRNNCell", "GRUCell"]


# -- dropout, config, errors --------------------------------------------------------------------------
def test_dropout_mask_is_one_per_sequence(path: str) -> None:
    """With a linear identity cell, the output at every step is the dropped input: the same features
    are dropped at every time step (one mask per sequence), and inference drops nothing."""
    layer = SimpleRNN(6, activation=None, use_bias=False, dropout=0.5, seed=3, return_sequences=True)
    layer.build((4, 5, 6))
    layer.set_weights([np.eye(6, dtype=np.float32), np.zeros((6, 6), np.float32)])
    x = torch.ones(4, 5, 6)
    out = layer(x, training=True)
    dropped = out == 0
    assert dropped.any() and not dropped.all()
    assert torch.equal(dropped, dropped[:, :1].expand_as(dropped))
    assert set(out[~dropped].unique().tolist()) == {2.0}
    torch.testing.assert_close(layer(x, training=False), x)


@pytest.mark.parametrize("oracle_name", ORACLES)
@pytest.mark.parametrize("name", ["SimpleRNN", "GRU", "LSTM"])
def test_config_round_trip(oracle_name: str, name: str) -> None:
    with use_flavor(oracle_name):
        layer = LAYERS[name](3, return_sequences=True, go_backwards=True)
        clone = LAYERS[name].from_config(layer.get_config())
    assert clone.get_config() == {**layer.get_config(), "name": clone.name}
    config = layer.get_config()
    assert ("time_major" in config) == (oracle_name == "tf_keras")
    assert ("seed" in config) == (oracle_name == "keras3")
    assert ("implementation" in config) == (oracle_name == "tf_keras" and name != "SimpleRNN")


def test_bad_config_and_input_name_the_problem() -> None:
    with pytest.raises(ValueError, match="units"):
        LSTM(0)
    with pytest.raises(TypeError, match="return_sequences"):
        RNN(LSTMCell(2), return_sequences="yes")
    layer = GRU(2)
    layer(torch.randn(1, 3, 4))
    with pytest.raises(ValueError, match=r"gru.*\(1, 3, 5\)"):
        layer(torch.randn(1, 3, 5))
    with pytest.raises(ValueError, match=r"ndim=3.*\(1, 4\)"):
        layer(torch.randn(1, 4))
    with pytest.raises(ValueError, match="cell contract"):
        RNN(object())


def test_fused_weight_cache_follows_set_weights() -> None:
    """The fused path caches the re-laid weights for calls without gradients; a changed weight is seen."""
    layer = GRU(3)
    x = torch.randn(2, 4, 5)
    with torch.no_grad():
        before = layer(x)
        layer.set_weights([w * 0.5 for w in layer.get_weights()])
        after = layer(x)
    assert not torch.equal(before, after)
    recurrent.FUSED = False
    try:
        with torch.no_grad():
            torch.testing.assert_close(layer(x), after)
    finally:
        recurrent.FUSED = True


@pytest.mark.parametrize("oracle_name", ORACLES)
def test_mixed_float16_matches_oracle(oracle: Any, oracle_name: str) -> None:
    module = oracle(oracle_name)
    config = {"units": 3, "return_sequences": True, "dtype": "mixed_float16"}
    shape = (2, 4, 5)
    x = _rng(20).normal(size=shape).astype(np.float32)
    theirs = _oracle_layer(module, "LSTM", config, shape)
    ours = _ours("LSTM", config, theirs, oracle_name, shape)
    got = ours(torch.tensor(x))
    assert got.dtype == torch.float16
    np.testing.assert_allclose(got.detach().float().numpy(), np.asarray(theirs(x), np.float32), atol=5e-3, rtol=5e-3)


def test_orthogonal_recurrent_kernel_in_bfloat16() -> None:
    """TensorFlow cannot build this (no bfloat16 QR); ours draws in float32 and rounds."""
    layer = LSTM(4, dtype="bfloat16")
    layer.build((None, 3, 2))
    recurrent_kernel = layer.get_weights()[1].astype(np.float32)
    assert recurrent_kernel.shape == (4, 16)
    # An orthogonal (4, 16) matrix has orthonormal rows (up to bfloat16 rounding, 2^-8 per entry).
    np.testing.assert_allclose(recurrent_kernel @ recurrent_kernel.T, np.eye(4), atol=0.05)


@pytest.mark.parametrize("name", ["LSTM", "GRU", "SimpleRNN"])
def test_packed_gradients_equal_the_loop(name: str) -> None:
    """Input and weight gradients through the packed fused path equal the general loop's."""
    torch.manual_seed(2)
    layer = LAYERS[name](3, return_sequences=True)
    x = torch.randn(3, 5, 4, requires_grad=True)
    mask = torch.arange(5)[None, :] < torch.tensor([5, 2, 3])[:, None]
    cotangent = torch.randn(3, 5, 3)
    grads = []
    for fused in (True, False):
        recurrent.FUSED = fused
        try:
            loss = (layer(x, mask=mask) * cotangent).sum()
            grads.append(torch.autograd.grad(loss, [x, *layer.keras_weights()]))
        finally:
            recurrent.FUSED = True
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
