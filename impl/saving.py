"""Read Keras model and weight files into keraspec models -- data only, no TensorFlow.

Formats (Keras's own loaders are the reference: keras/src/saving/saving_lib.py and
tf_keras/src/saving/legacy/hdf5_format.py):

* Keras 3 ``.keras``: a zip archive of ``config.json`` (the model config), ``metadata.json`` and
  ``model.weights.h5``, whose ``layers/<snake_case class name>[_<n>]/vars/<i>`` datasets hold each
  layer's variables in creation order; the ``_<n>`` counts layers of one class in the order of
  ``model.layers`` (nested models nest as ``layers/functional/layers/...``).
* ``.weights.h5`` from ``save_weights`` (Keras 3, and tf_keras >= 2.13): that same HDF5 layout.
* tf_keras's legacy HDF5 ``.h5`` model: attribute ``model_config`` (JSON) and group
  ``model_weights`` with one group per layer, whose ``weight_names`` attribute orders its
  datasets (trainable weights first, then non-trainable); a legacy weights-only ``.h5`` has those
  per-layer groups at its root.

Only JSON and HDF5 datasets are read (``json.loads``, ``zipfile``, ``h5py``): no pickle, no eval,
and a Lambda layer's bytecode is refused unless ``safe_mode=False``.  A damaged file -- not a zip,
not HDF5, truncated, missing a member -- raises :class:`ModelFileError` (a ``ValueError``) naming
the file and what is wrong.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .base import Layer
from .models import Model, ModelConfigError, model_from_config

#: The members of a Keras 3 ``.keras`` archive this loader reads.
CONFIG_MEMBER = "config.json"
WEIGHTS_MEMBER = "model.weights.h5"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"


class ModelFileError(ValueError):
    """A model or weights file that cannot be read: the message names the file and the problem."""

    def __init__(self, path: Any, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        raise ModelFileError("(h5py)", "reading Keras files needs h5py; pip install h5py") from None
    return h5py


def _signature(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(8)
    except FileNotFoundError:
        raise ModelFileError(path, "no such file") from None
    except IsADirectoryError:
        raise ModelFileError(path, "is a folder, not a model file (a SavedModel folder is not supported)") from None
    except OSError as exc:
        raise ModelFileError(path, f"cannot be read ({exc.strerror or exc})") from None


def file_kind(path: Any) -> str:
    """``"keras"`` (a zip archive) or ``"hdf5"``, from the file's first bytes, not its name."""
    path = Path(path)
    head = _signature(path)
    if head.startswith(ZIP_SIGNATURE):
        return "keras"
    if head.startswith(HDF5_SIGNATURE):
        return "hdf5"
    if not head:
        raise ModelFileError(path, "is empty")
    raise ModelFileError(path, "is neither a Keras .keras archive (zip) nor an HDF5 file (.h5)")


def load_model(path: Any, safe_mode: bool = True, custom_objects: Mapping[str, Any] | None = None) -> Model:
    """A keraspec model from a Keras 3 ``.keras`` archive or a legacy ``.h5`` model file.

    The model's ``flavor`` says which Keras it imitates: ``keras3`` for a ``.keras`` archive or a
    Keras 3 ``.h5``, ``tf_keras`` for an ``.h5`` saved by tf_keras (Keras 2 semantics)."""
    path = Path(path)
    if file_kind(path) == "keras":
        with _open_archive(path) as archive:
            config = _read_json_member(path, archive, CONFIG_MEMBER)
            model = _model_from(path, config, safe_mode, custom_objects, "keras3")
            weights = _read_member(path, archive, WEIGHTS_MEMBER)
        with _open_h5(path, io.BytesIO(weights), f"its {WEIGHTS_MEMBER}") as h5:
            _load_saving_lib_weights(path, model, h5)
        return model
    with _open_h5(path, path) as h5:
        raw = h5.attrs.get("model_config")
        if raw is None:
            raise ModelFileError(path, "is an HDF5 file without a model config (a weights file? use load_weights)")
        try:
            config = json.loads(_text(raw))
        except json.JSONDecodeError as exc:
            raise ModelFileError(path, f"its model_config is not valid JSON ({exc})") from None
        flavor = "keras3" if _major_version(h5.attrs.get("keras_version")) >= 3 else "tf_keras"
        model = _model_from(path, config, safe_mode, custom_objects, flavor)
        if "model_weights" not in h5:
            raise ModelFileError(path, "has no 'model_weights' group")
        _load_legacy_weights(path, model, h5["model_weights"])
    return model


def load_weights(model: Model, path: Any) -> None:
    """Set a model's weights from a ``.weights.h5`` file (Keras 3 or tf_keras ``save_weights``), a
    legacy tf_keras ``.h5`` (weights-only or whole model), or a ``.keras`` archive."""
    path = Path(path)
    if file_kind(path) == "keras":
        with _open_archive(path) as archive:
            weights = _read_member(path, archive, WEIGHTS_MEMBER)
        with _open_h5(path, io.BytesIO(weights), f"its {WEIGHTS_MEMBER}") as h5:
            _load_saving_lib_weights(path, model, h5)
        return
    with _open_h5(path, path) as h5:
        if "layers" in h5 and "layer_names" not in h5.attrs:
            _load_saving_lib_weights(path, model, h5)
        elif "model_weights" in h5:
            _load_legacy_weights(path, model, h5["model_weights"])
        elif "layer_names" in h5.attrs:
            _load_legacy_weights(path, model, h5)
        else:
            raise ModelFileError(path, "is an HDF5 file that holds no Keras weights (no 'layers' group, no layer_names)")


# -- reading the containers ----------------------------------------------------------------------
class _open_archive:
    """``zipfile.ZipFile`` whose failures become one ModelFileError."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> zipfile.ZipFile:
        try:
            self.archive = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise ModelFileError(self.path, f"is not a readable .keras archive (damaged or truncated zip: {exc})") from None
        return self.archive

    def __exit__(self, *exc: Any) -> None:
        self.archive.close()


def _read_member(path: Path, archive: zipfile.ZipFile, member: str) -> bytes:
    if member not in archive.namelist():
        found = ", ".join(archive.namelist()) or "nothing"
        raise ModelFileError(path, f"the archive has no {member} (it holds {found})")
    try:
        return archive.read(member)
    except (zipfile.BadZipFile, EOFError, OSError, zipfile.LargeZipFile) as exc:
        raise ModelFileError(path, f"{member} in the archive is damaged or truncated ({exc})") from None


def _read_json_member(path: Path, archive: zipfile.ZipFile, member: str) -> Any:
    data = _read_member(path, archive, member)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(path, f"{member} is not valid JSON ({exc})") from None


class _open_h5:
    """``h5py.File`` (read-only) whose open failures become one ModelFileError."""

    def __init__(self, path: Path, source: Any, what: str = "") -> None:
        self.path, self.source, self.what = path, source, what

    def __enter__(self) -> Any:
        h5py = _h5py()
        try:
            self.file = h5py.File(self.source, "r")
        except (OSError, ValueError) as exc:
            where = f"{self.what} " if self.what else ""
            raise ModelFileError(self.path, f"{where}is not a readable HDF5 file (damaged or truncated: "
                                            f"{' '.join(str(exc).split())})") from None
        return self.file

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        self.file.close()
        if kind is not None and issubclass(kind, (OSError, RuntimeError)) and not isinstance(value, ModelFileError):
            # h5py reading a damaged object past the header (a truncated dataset, a broken attribute)
            where = f"{self.what} " if self.what else ""
            raise ModelFileError(self.path, f"{where}is damaged ({' '.join(str(value).split())})") from None


def _dataset(path: Path, group: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(group[name][()])
    except KeyError:
        raise ModelFileError(path, f"has no weight {group.name}/{name}") from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(path, f"weight {group.name}/{name} cannot be read (damaged: {' '.join(str(exc).split())})") from None


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _major_version(value: Any) -> int:
    match = re.match(r"\d+", _text(value)) if value is not None else None
    return int(match.group()) if match else 2


def _model_from(path: Path, config: Any, safe_mode: bool, custom_objects: Mapping[str, Any] | None,
                flavor: str) -> Model:
    try:
        return model_from_config(config, custom_objects=custom_objects, safe_mode=safe_mode, flavor=flavor)
    except ModelConfigError as exc:
        # The config error stays its own class (UnsupportedLayerError, UnsafeConfigError), with the file named.
        exc.args = (f"{path}: {exc}",)
        raise


# -- weights -------------------------------------------------------------------------------------
def snake_case(name: str) -> str:
    """Keras's ``to_snake_case``: how the saving library names a layer's group."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _saving_lib_groups(model: Model) -> Iterator[tuple[str, Layer]]:
    """(group path, layer) of every layer in the layout of Keras's saving library."""
    used: dict[str, int] = {}
    for layer in model.layers:
        base = snake_case(model.keras_class_of(layer))
        if base in used:
            used[base] += 1
            name = f"{base}_{used[base]}"
        else:
            used[base] = 0
            name = base
        yield name, layer


def _ensure_built(path: Path, model: Model) -> None:
    """Layers create their weights on the first call: a probe run builds them all."""
    if isinstance(model, Model) and model.built and model._input_refs:
        try:
            model.build()
        except (ValueError, TypeError, RuntimeError) as exc:
            raise ModelFileError(path, f"the model does not run: {' '.join(str(exc).split())}") from None
    elif not model._input_refs:
        raise ModelFileError(path, f"model '{model.name}' has no input shape; build it before loading weights")


def _load_saving_lib_weights(path: Path, model: Model, h5: Any, prefix: str = "layers") -> None:
    if prefix == "layers":
        _ensure_built(path, model)
    if prefix not in h5:
        raise ModelFileError(path, f"has no '{prefix}' group of layer weights")
    for name, layer in _saving_lib_groups(model):
        where = f"{prefix}/{name}"
        if isinstance(layer, Model):
            _load_saving_lib_weights(path, layer, h5, f"{where}/layers")
            continue
        expected = len(layer.get_weights())
        if where not in h5:
            if expected:
                raise ModelFileError(path, f"has no weights for layer '{layer.name}' (group {where})")
            continue
        group = h5[where].get("vars")
        stored = sorted(group.keys(), key=int) if group is not None else []
        if len(stored) != expected:
            raise ModelFileError(path, f"layer '{layer.name}' expects {expected} weight(s), the file holds "
                                       f"{len(stored)} under {where}/vars")
        if expected:
            _set(path, layer, [_dataset(path, group, key) for key in stored])


def _legacy_order(layer: Layer) -> list[tuple[Layer, int]]:
    """tf_keras's ``_legacy_weights`` order: (layer, weight index) of trainable weights, then of
    non-trainable ones (every weight of a frozen layer is non-trainable), nested models flattened."""
    trainable: list[tuple[Layer, int]] = []
    frozen: list[tuple[Layer, int]] = []
    leaves = [leaf for _, leaf in _leaves(layer)]
    for leaf in leaves:
        for index, spec_w in enumerate(leaf._weights):
            (trainable if spec_w.trainable and leaf.trainable and _all_trainable(layer, leaf) else frozen).append((leaf, index))
    return trainable + frozen


def _leaves(layer: Layer) -> Iterator[tuple[str, Layer]]:
    if isinstance(layer, Model):
        for inner in layer.layers:
            yield from _leaves(inner)
    else:
        yield layer.name, layer


def _all_trainable(root: Layer, leaf: Layer) -> bool:
    return root.trainable if isinstance(root, Model) else True


def _load_legacy_weights(path: Path, model: Model, group: Any) -> None:
    """tf_keras's order-based ``load_weights_from_hdf5_group``: the layers with weights, in order,
    against the file's ``layer_names`` that hold weights."""
    _ensure_built(path, model)
    layer_names = [_text(n) for n in group.attrs.get("layer_names", [])]
    saved = []
    for name in layer_names:
        if name not in group:
            raise ModelFileError(path, f"lists layer '{name}' but has no group for it")
        weight_names = [_text(n) for n in group[name].attrs.get("weight_names", [])]
        if weight_names:
            saved.append((name, weight_names))
    layers = [layer for layer in model.layers if layer.get_weights()]
    if len(saved) != len(layers):
        raise ModelFileError(path, f"holds weights for {len(saved)} layers, the model has {len(layers)} layers "
                                   "with weights")
    for layer, (name, weight_names) in zip(layers, saved):
        order = _legacy_order(layer)
        if len(order) != len(weight_names):
            raise ModelFileError(path, f"layer '{name}' holds {len(weight_names)} weight(s), layer '{layer.name}' "
                                       f"of the model expects {len(order)}")
        values = [_dataset(path, group[name], w) for w in weight_names]
        per_leaf: dict[int, dict[int, np.ndarray]] = {}
        leaves: dict[int, Layer] = {}
        for (leaf, index), value in zip(order, values):
            per_leaf.setdefault(id(leaf), {})[index] = value
            leaves[id(leaf)] = leaf
        for key, by_index in per_leaf.items():
            _set(path, leaves[key], [by_index[i] for i in range(len(by_index))])


def _set(path: Path, layer: Layer, values: list[np.ndarray]) -> None:
    try:
        layer.set_weights(values)
    except ValueError as exc:
        raise ModelFileError(path, " ".join(str(exc).split())) from None


__all__ = ["ModelFileError", "file_kind", "load_model", "load_weights", "snake_case"]
