"""The expression language: what it computes, and what it refuses to run."""

import pytest

from keraspec.spec.expr import Expr, ExprError


@pytest.mark.parametrize(
    ("source", "env", "expected"),
    [
        ("input[:-1] + (units,)", {"input": (None, 5, 4), "units": 3}, (None, 5, 3)),
        ("input[1] // 2", {"input": (None, None)}, None),  # unknown dims stay unknown
        ("ceil_div(a, b)", {"a": 7, "b": 2}, 4),
        ("[k * 2 for k in ks if k > 1]", {"ks": (1, 2, 3)}, [4, 6]),
        ("all(s == 1 for s in strides) or all(d == 1 for d in dil)", {"strides": (2, 1), "dil": (1, 1)}, True),
        ("a if flag else b", {"a": 1, "b": 2, "flag": False}, 2),
        ("prod(shape)", {"shape": (2, 3, None)}, None),
        ("conv_out(7, 3, 2, 1, 'valid')", {}, 3),
        ("conv_out(7, 3, 2, 1, 'same')", {}, 4),
        ("deconv_out(4, 3, 2, 1, 'same', None)", {}, 8),
        ("deconv_out(4, 3, 2, 1, 'valid', 1)", {}, 10),
    ],
)
def test_evaluates(source, env, expected):
    assert Expr(source)(env) == expected


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os').system('true')",
        "x.__class__",
        "open('/etc/passwd')",
        "(lambda: 1)()",
        "[a for a in b for c in d]",
        "f(x=1)",
        "{1: 2}",
    ],
)
def test_refuses_unsafe_or_unknown_syntax(source):
    with pytest.raises(ExprError):
        Expr(source)


def test_reports_unbound_names():
    expr = Expr("units + bias_size")
    assert expr.names == {"units", "bias_size"}
    with pytest.raises(ExprError, match="unbound"):
        expr({"units": 1})


def test_evaluation_errors_name_the_expression():
    with pytest.raises(ExprError, match="input\\[5\\]"):
        Expr("input[5]")({"input": (1, 2)})
