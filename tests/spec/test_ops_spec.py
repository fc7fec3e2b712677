"""The ops spec (spec/ops/*.yaml, keraspec.spec.ops): it lists every function of the seed document
004-backend.txt, each with a status and, unless implemented, the reason; its rules evaluate; the
`keraspec op` command prints a function's spec, or one line and exit status 2."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from keraspec.spec import cli, ops

REPO = Path(__file__).resolve().parents[2]
#: The seed document, kept beside the repository (``../shared/seeds``).
SEED_DOCUMENT = REPO.parent / "shared" / "seeds" / "004-backend.txt"
#: How many functions the seed document names (pinned, so a parser change that loses some shows).
SEED_FUNCTION_COUNT = 137

# The seed document is a scraped page: a function's section starts with a line holding only its
# name (sometimes with a stray backtick), followed either by its signature ("1 | def name(" or
# "1 | K.name(") or, for the few without one, by a description sentence, which in this document
# always starts with a verb.  Parameter names also stand alone on a line, but are followed by ":"
# explanations, values or connectives, never by a signature or such a sentence.
_NAME_LINE = re.compile(r"^`?([a-z][a-z0-9_]*)`?$")
_SIGNATURE_LINE = re.compile(r"^\d+ \| (?:def )?(?:K\.)?[a-z_][a-z0-9_]*\(")
_DESCRIPTION_VERBS = ("返回", "判断", "将", "设置", "获得", "重置", "结束", "生成", "计算", "求")


def seed_functions(text: str) -> list[str]:
    """The function names the seed document has sections for, in order, each once."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    names: list[str] = []
    for line, following in zip(lines, lines[1:]):
        match = _NAME_LINE.match(line)
        if match and (_SIGNATURE_LINE.match(following) or following.startswith(_DESCRIPTION_VERBS)):
            if match.group(1) not in names:
                names.append(match.group(1))
    return names


@pytest.fixture(scope="module")
def seed_names() -> list[str]:
    if not SEED_DOCUMENT.is_file():
        pytest.skip(f"the seed document {SEED_DOCUMENT} is not beside this checkout")
    return seed_functions(SEED_DOCUMENT.read_text(encoding="utf-8"))


def test_the_seed_parser_finds_known_sections(seed_names):
    assert len(seed_names) == SEED_FUNCTION_COUNT
    # Sections without a signature line, a misspelt one, Keras 1 names, and parameter names that
    # must not be taken for functions.
    for name in ("backend", "learning_phase", "is_sparse", "truncated_normall", "lesser", "deconv2d", "all", "foldr"):
        assert name in seed_names
    for parameter in ("value", "alt", "initializer", "int32", "x", "axis", "float32_ref"):
        assert parameter not in seed_names


def test_the_spec_lists_exactly_the_seed_functions(seed_names):
    specs = ops.load_all().values()
    listed = sorted(s.seed_name for s in specs if s.in_seed)
    assert listed == sorted(seed_names)
    extra = sorted(s.name for s in specs if not s.in_seed)
    assert extra == ["constant", "flatten", "identity", "random_bernoulli"]  # tf_keras.backend functions the seed lacks


def test_every_file_is_yaml_that_follows_the_schema():
    files = sorted(ops.OPS_DIR.glob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        data = ops.load_file(path)  # safe_load + schema
        assert data["group"] == path.stem
        assert yaml.safe_load(path.read_text()) == data


def test_statuses_have_reasons_and_match_the_implementation():
    from keraspec.impl import backend as K

    for name, s in ops.load_all().items():
        assert s.status in ops.STATUSES
        if s.implemented:
            assert callable(getattr(K, name, None)), f"{name} is 'implemented' but keraspec.impl.backend lacks it"
            assert s.signature.startswith(f"{name}("), name
            assert s.comparable or s.conformance, f"{name}: compared with no oracle and no reason given"
        else:
            assert len(s.reason) > 10, name
            assert not hasattr(K, name), f"{name} is {s.status!r} but keraspec.impl.backend has it: update the spec"
    implemented = set(ops.functions(status="implemented"))
    aliases = {s.seed_name for s in ops.load_all().values()}
    assert set(K.implemented()) - implemented <= aliases, "functions of keraspec.impl.backend missing from the spec"


def test_counts_by_status():
    counts = {status: len(ops.functions(status=status)) for status in ops.STATUSES}
    assert sum(counts.values()) == len(ops.load_all()) == SEED_FUNCTION_COUNT + 4
    assert counts["implemented"] >= 100


@pytest.mark.parametrize(("values", "shape"), [
    ({"x": [32, 20, 1], "y": [32, 30, 20], "axes": [1, 2]}, (32, 1, 30)),  # tf_keras's docstring example
    ({"x": [4, 2, 3], "y": [4, 3, 5], "axes": None}, (4, 2, 5)),
    ({"x": [4, 3], "y": [4, 3], "axes": None}, (4, 1)),  # two 2-D inputs: (batch, 1)
    ({"x": [4, 3], "y": [4, 3, 5], "axes": 1}, (4, 5)),
    ({"x": [4, 2, 3], "y": [4, 3], "axes": -1}, (4, 2)),
])
def test_batch_dot_shape_rule(values, shape):
    assert ops.lookup("batch_dot").output_shape(values) == shape


def test_other_shape_rules():
    assert ops.lookup("dot").output_shape({"x": [2, 3], "y": [4, 3, 5]}) == (2, 4, 5)
    assert ops.lookup("sum").output_shape({"x": [4, 3, 2], "axis": (-1, 0), "keepdims": False}) == (3,)
    assert ops.lookup("sum").output_shape({"x": [4, 3, 2], "axis": None, "keepdims": True}) == (1, 1, 1)
    assert ops.lookup("normalize_batch_in_training").output_shape({"x": [8, 3, 2]}) == [(8, 3, 2), (2,), (2,)]
    assert ops.lookup("spatial_2d_padding").output_shape(
        {"x": [1, 2, 3, 4], "padding": [[1, 1], [0, 2]], "data_format": "channels_first"}) == (1, 2, 5, 6)


def test_lookup_by_seed_name_and_prefix_and_unknown_names():
    assert ops.lookup("lesser").name == "less"
    assert ops.lookup("truncated_normall").name == "truncated_normal"
    assert ops.lookup("K.batch_dot").name == "batch_dot"
    with pytest.raises(ops.UnknownOpError, match="did you mean batch_dot"):
        ops.lookup("batch_dott")


def test_a_bad_spec_entry_is_refused():
    with pytest.raises(ops.OpsSpecError, match="needs a reason"):
        ops.OpSpec("x", {"name": "f", "status": "planned"})
    with pytest.raises(ops.OpsSpecError, match="not a tensor argument"):
        ops.OpSpec("x", {"name": "f", "status": "implemented", "args": [{"name": "a", "kind": "int"}], "gradients": ["a"]})


def test_the_ops_spec_imports_nothing_above_it():
    tree = ast.parse(Path(ops.__file__).read_text())
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not [m for m in imported if m.startswith(("keraspec.conformance", "keraspec.impl", "torch", "tensorflow"))]


def test_cli_prints_a_function(capsys):
    assert cli.main(["op", "batch_dot"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("K.batch_dot  (linalg; implemented)")
    assert "oracle tf_keras: tf_keras.backend.batch_dot" in out and "output shape:" in out


def test_cli_lists_every_group(capsys):
    assert cli.main(["op"]) == 0
    out = capsys.readouterr().out
    assert all(f"{group}:" in out for group in ops.groups())


def test_cli_unknown_function_is_one_line_and_status_2():
    out = subprocess.run([sys.executable, "-m", "keraspec.spec.cli", "op", "batch_dott"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == cli.EXIT_BAD_INPUT
    assert out.stderr.startswith("keraspec op: no backend function named 'batch_dott'")
    assert len(out.stderr.strip().splitlines()) == 1
