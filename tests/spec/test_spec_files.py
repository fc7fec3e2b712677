"""Every spec file follows the schema, every expression parses, and the lookup API behaves."""

import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from keraspec import spec
from keraspec.spec.loader import SPEC_DIR, load_file, schema

SPEC_FILES = sorted(SPEC_DIR.glob("*.yaml"))


def test_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(schema())


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.name for p in SPEC_FILES])
def test_spec_file_matches_schema(path: Path):
    load_file(path)  # raises SpecFileError naming the file and the place


def test_schema_rejects_a_bad_entry(tmp_path):
    bad = {"family": "core", "layers": [{"name": "Dense", "params": {"units": {"type": "integer", "doc": "x x"}}}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema())


def test_every_layer_loads_and_has_docs():
    assert spec.layers(), "the spec is empty"
    for name in spec.layers():
        s = spec.lookup(name)
        assert s.doc, f"{name} has no doc"
        for p in s.params.values():
            assert p.doc, f"{name}.{p.name} has no doc"
        for c in s.constraints:
            assert c.message and c.params, f"{name}.{c.name} lacks a message or parameters"


def test_lookup_aliases_and_suggestions():
    assert spec.lookup("dense").name == "Dense"
    with pytest.raises(spec.UnknownLayerError, match="did you mean Dense"):
        spec.lookup("Dens")


def test_permute_output_shape_from_the_issue():
    assert spec.lookup("Permute").output_shape({"dims": (2, 1)}, (None, 10, 64)) == (None, 64, 10)


def test_validate_names_the_parameter_and_rule():
    with pytest.raises(ValueError, match=r"'units'.*units\.min"):
        spec.lookup("Dense").validate({"units": 0})
    with pytest.raises(TypeError, match="did you mean 'units'"):
        spec.lookup("Dense").validate({"unit": 3})
    with pytest.raises(TypeError, match="missing required argument 'units'"):
        spec.lookup("Dense").validate({})


def test_normalize_fills_defaults_and_null_means():
    config = spec.lookup("Dense").validate({"units": 3})
    assert config["activation"] == "linear" and config["use_bias"] is True


def test_yaml_is_loaded_safely():
    text = "family: core\nlayers: !!python/object/apply:os.system ['true']\n"
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(text)


def test_cli_prints_the_table_and_evaluates():
    run = lambda *a: subprocess.run([sys.executable, "-m", "keraspec.spec.cli", *a], capture_output=True, text=True)  # noqa: E731
    out = run("spec", "Dense")
    assert out.returncode == 0 and "units" in out.stdout and "glorot_uniform" in out.stdout
    out = run("spec", "Permute", "--config", '{"dims": [2, 1]}', "--input-shape", "(None, 10, 64)")
    assert "output shape: (None, 64, 10)" in out.stdout
    out = run("spec", "Dense", "--config", '{"units": 0}')
    assert out.returncode == 1 and "units.min" in out.stderr
    out = run("spec", "Dens")
    assert out.returncode == 2 and "did you mean Dense" in out.stderr


@pytest.mark.parametrize("behaviour", [
    {"stochastic": {"kind": "dropout", "rate": "rate", "broadcast_axes": "[]"}},  # the old, closed form
    {"stochastic": {"distribution": "bernoulli", "drop_rate": "rate", "broadcast_axes": "[]"}},  # kept/dropped missing
    {"stochastic": {"distribution": "gaussian", "mean": "0", "stddev": "s", "broadcast_axes": "[]"}},  # combine missing
    {"oracle_layout": {"channels_first": "transpose_to_channels_last"}},
    {"oracle_layuot": {"param": "data_format", "transpose_to_channels_last": ["channels_first"]}},  # a typo
    {"input_values": {"param": "mask_value", "mask_value_fraction": 0.3}},
])
def test_schema_rejects_a_bad_behaviour(behaviour):
    bad = {"family": "core", "layers": [{"name": "Dropout", "behaviour": behaviour}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema())


def test_behaviour_names_parameters_the_layer_has():
    """Every parameter a behaviour names by role is a parameter (or constant) of its layer."""
    for name in spec.layers():
        s = spec.lookup(name)
        known = set(s.params) | set(s.vars)
        b = s.behaviour
        named = []
        if b.oracle_layout is not None:
            named += [b.oracle_layout.param, *b.oracle_layout.after_transpose.values()]
        if b.input_values is not None:
            named.append(b.input_values.param)
        if b.stochastic is not None:
            named += [*b.stochastic.follows_batch, *([b.stochastic.seed] if b.stochastic.seed else [])]
        missing = [n for n in named if n not in known]
        assert not missing, f"{name}: behaviour names {missing}, which are not among its parameters"


def test_objects_file_matches_schema_and_draws_every_type():
    from keraspec.spec.loader import objects

    data = objects()
    assert set(data["draw"]) == {"activation", "initializer", "regularizer", "constraint"}
    limit = spec.lookup("Dense").oracle_limit({"units": 2, "kernel_constraint": "non_neg"}, "tf_keras",
                                              "training_step", "float64")
    assert limit is not None and "NonNeg" in limit.reason
    assert spec.lookup("Dense").oracle_limit({"units": 2, "kernel_constraint": "non_neg"}, "tf_keras",
                                             "training_step", "mixed_float16") is None


def test_weight_initializers_and_effective_rules_name_real_parameters():
    for name in spec.layers():
        s = spec.lookup(name)
        for w in s.weights:
            if w.initializer is not None:
                assert w.initializer in s.params and s.params[w.initializer].type == "initializer", (
                    f"{name}.{w.name}: initializer {w.initializer!r} is not an initializer parameter")
        for p in s.params.values():
            unknown = [k for k in p.effective_make if k not in s.params]
            assert not unknown, f"{name}.{p.name}: effective.make assigns unknown parameters {unknown}"


def test_schema_enums_mirror_the_constants():
    """The schema lists the dtype policies and edge values for validation; the Python constants are
    the definition, and this keeps the two from drifting apart."""
    defs = schema()["$defs"]
    assert sorted(defs["dtype_policy"]["enum"]) == sorted(spec.DTYPE_POLICIES)
    assert defs["edge_value"]["enum"] == list(spec.EDGE_VALUES)
