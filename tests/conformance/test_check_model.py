"""``keraspec check-model`` end to end: a saved application model conforms (exit 0, page written);
a deliberately altered one diverges and the check names the altered layer (exit 1); bad input is
one line and exit status 2."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from keraspec.conformance import model_check
from keraspec.impl import saving
from keraspec.spec import cli

ALTERED_LAYER = "block_3_depthwise"


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MobileNetV2 (alpha 0.35, 32x32, weights=None) with seeded random weights, saved by Keras 3."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    pytest.importorskip("tensorflow")
    import keras

    model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10)
    rng = np.random.default_rng(0)
    values = []
    for w in model.weights:
        shape = tuple(w.shape)
        if w.path.endswith(("gamma", "moving_variance")):
            values.append(rng.uniform(0.5, 1.5, shape))
        elif len(shape) <= 1:
            values.append(rng.normal(0.0, 0.1, shape))
        else:
            values.append(rng.normal(0.0, 1.0, shape) / np.sqrt(np.prod(shape[:-1])))
    model.set_weights([v.astype(np.float32) for v in values])
    path = tmp_path_factory.mktemp("check_model") / "mobilenet.keras"
    model.save(path)
    return path


def test_conforming_model_exit_0_and_page(mobilenet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    page = tmp_path / "page.html"
    assert cli.main(["check-model", str(mobilenet), "--out", str(page)]) == 0
    out = capsys.readouterr().out
    assert "CONFORMS" in out and ALTERED_LAYER in out  # the per-layer table lists every layer
    html = page.read_text()
    assert "Conforms" in html and "<svg" in html and ALTERED_LAYER in html


def test_altered_weights_name_the_layer(mobilenet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]):
    """Our copy of one layer's weights is perturbed by 1%: the oracle still reads the file, so the
    check must stop at exactly that layer (its inputs still agree; its output does not)."""
    original = saving.load_model

    def altered_load(path: Any, *args: Any, **kwargs: Any):
        model = original(path, *args, **kwargs)
        layer = model.get_layer(ALTERED_LAYER)
        layer.set_weights([w * 1.01 for w in layer.get_weights()])
        return model

    monkeypatch.setattr(saving, "load_model", altered_load)
    page = tmp_path / "page.html"
    assert cli.main(["check-model", str(mobilenet), "--out", str(page)]) == 1
    out = capsys.readouterr().out
    assert "DIVERGES at layer" in out and f"'{ALTERED_LAYER}' (DepthwiseConv2D)" in out
    assert "config:" in out and "kernel_size" in out
    assert "Diverges at layer" in page.read_text()


def test_altered_config_names_the_layer(mobilenet: Path):
    """A config changed on our side only (a ReLU given a negative_slope): the first divergence is that ReLU."""
    from keraspec.impl import layers as L

    def alter(model: Any) -> None:
        relu = model.get_layer("block_2_expand_relu")
        replacement = L.ReLU(max_value=6.0, negative_slope=0.1, name=relu.name)
        for node in model._nodes:
            if node.layer is relu:
                node.layer = replacement
        model.layer_list[model.layers.index(relu)] = replacement
        model._index_layers()

    result = model_check.check_model(mobilenet, alter=alter)
    assert not result.conforms
    assert result.first_divergence.name == "block_2_expand_relu"


def test_inputs_from_npz(mobilenet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    data = tmp_path / "x.npz"
    np.savez(data, np.random.default_rng(3).standard_normal((1, 32, 32, 3)).astype(np.float32))
    assert cli.main(["check-model", str(mobilenet), "--inputs", str(data)]) == 0
    assert "(1, 32, 32, 3)" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["{missing}"], "no such file"),
    (["{garbage}"], "neither a Keras .keras archive"),
    (["{truncated}"], "damaged or truncated"),
    (["{model}", "--input-shape", "(2, 16, 16, 3)"], "fixes at 32"),
    (["{model}", "--input-shape", "[[2, 32"], "is not a shape"),
    (["{model}", "--inputs", "{garbage}"], "not a readable .npz"),
    (["{model}", "--out", "{tmp}/no/such/folder/page.html"], "folder does not exist"),
    (["{model}", "--dtype", "int8"], "invalid choice"),
])
def test_bad_input_is_one_line_exit_2(mobilenet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      args: list[str], message: str):
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"hello")
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(mobilenet.read_bytes()[:4000])
    names = {"missing": str(tmp_path / "nope.keras"), "garbage": str(garbage), "truncated": str(truncated),
             "model": str(mobilenet), "tmp": str(tmp_path)}
    argv = ["check-model"] + [a.format(**names) for a in args]
    with pytest.raises(SystemExit) if message == "invalid choice" else _no_exit() as _:
        status = cli.main(argv)
        assert status == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


class _no_exit:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> bool:
        return False


def test_missing_layer_class_exit_2(mobilenet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    altered = tmp_path / "altered.keras"
    with zipfile.ZipFile(mobilenet) as src, zipfile.ZipFile(altered, "w") as dst:
        for item in src.namelist():
            content = src.read(item)
            if item == "config.json":
                content = content.replace(b'"class_name": "ReLU"', b'"class_name": "TextVectorization"', 1)
            dst.writestr(item, content)
    assert cli.main(["check-model", str(altered)]) == 2
    assert "'TextVectorization' (layer 'Conv1_relu')" in capsys.readouterr().err


def test_page_escapes_everything():
    from keraspec.conformance.tolerance import compare, tolerance
    from keraspec.reports.model_page import render_page

    hostile = "<script>alert(1)</script>"
    check = model_check.ModelCheck(hostile, "keras3", "3", "keras3", hostile, [(1, 2)], "float32", 0)
    tol = tolerance("float32")
    check.rows.append(model_check.LayerRow(0, hostile, "Dense", "reduction", (1, 2), {"name": hostile},
                                           local=compare(np.ones(2), np.zeros(2), tol)))
    html = render_page(check)
    assert hostile not in html and "&lt;script&gt;" in html
