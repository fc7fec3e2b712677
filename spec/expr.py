"""The spec's expression language: shape rules, weight shapes and constraints.

Expressions are written in a small subset of Python syntax.  They are parsed with
:mod:`ast` and interpreted by a whitelisting walker -- nothing is ever passed to
``eval``/``exec`` and only the names and functions listed here can be reached.

Supported: int/float/str/bool/None literals, names bound by the caller (config
values, ``input`` -- the input shape, ``inputs`` -- all input shapes, ``rank`` ...),
arithmetic (``+ - * / // % **``), comparisons, ``and``/``or``/``not``,
``a if cond else b``, lists/tuples, indexing and slicing, list comprehensions and
generator expressions with one ``for`` (per-axis maps), and the functions in
:data:`FUNCTIONS`.

Unknown dimensions are ``None``; arithmetic on ``None`` gives ``None`` so that a
rule such as ``input[1] // 2`` maps an unknown dimension to an unknown dimension.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any


class ExprError(ValueError):
    """An expression that cannot be parsed, or fails while it is evaluated."""


def _none_safe(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any) -> Any:
        if any(a is None for a in args):
            return None
        return fn(*args)

    wrapped.__name__ = getattr(fn, "__name__", "fn")
    return wrapped


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _conv_out(size: int | None, kernel: int, stride: int, dilation: int, padding: str) -> int | None:
    """Output length of a convolution or pooling window along one axis (TF semantics)."""
    if size is None:
        return None
    if padding in ("same", "causal"):
        return _ceil_div(size, stride)
    if padding == "valid":
        effective = dilation * (kernel - 1) + 1
        return _ceil_div(size - effective + 1, stride)
    raise ExprError(f"conv_out: unknown padding {padding!r}")


def _deconv_out(
    size: int | None, kernel: int, stride: int, dilation: int, padding: str, output_padding: int | None
) -> int | None:
    """Output length of a transposed convolution along one axis (Keras semantics)."""
    if size is None:
        return None
    effective = dilation * (kernel - 1) + 1
    if output_padding is None:
        if padding == "valid":
            return size * stride + max(effective - stride, 0)
        if padding == "same":
            return size * stride
        raise ExprError(f"deconv_out: unknown padding {padding!r}")
    pad = 0 if padding == "valid" else effective // 2
    return (size - 1) * stride + effective - 2 * pad + output_padding


def _prod(values: Iterable[Any]) -> Any:
    result: Any = 1
    for v in values:
        if v is None:
            return None
        result *= v
    return result


#: Functions callable from an expression.  Adding one here makes it part of the language.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "len": len,
    "sum": sum,
    "all": all,
    "any": any,
    "range": range,
    "list": list,
    "tuple": tuple,
    "int": int,
    "sorted": sorted,
    "set": set,
    "isinstance_int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "is_seq": lambda v: isinstance(v, (list, tuple)),
    "prod": _prod,
    "ceil": _none_safe(math.ceil),
    "floor": _none_safe(math.floor),
    "ceil_div": _none_safe(_ceil_div),
    "conv_out": _conv_out,
    "deconv_out": _deconv_out,
}

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_CONSTANT_NAMES = {"None": None, "True": True, "False": False, "true": True, "false": False}


class Expr:
    """A parsed expression; call it with the names it uses to evaluate it."""

    __slots__ = ("source", "_tree", "names")

    def __init__(self, source: str | int | float | bool | None):
        self.source = str(source) if not isinstance(source, str) else source
        try:
            self._tree = ast.parse(self.source.strip(), mode="eval").body
        except SyntaxError as exc:
            raise ExprError(f"cannot parse expression {self.source!r}: {exc.msg}") from None
        self.names: frozenset[str] = frozenset(self._check(self._tree, bound=frozenset()))

    def __repr__(self) -> str:
        return f"Expr({self.source!r})"

    def __call__(self, env: Mapping[str, Any] | None = None, **names: Any) -> Any:
        scope = dict(env or {}, **names)
        missing = self.names - scope.keys()
        if missing:
            raise ExprError(f"expression {self.source!r} uses unbound name(s) {sorted(missing)}")
        try:
            return self._eval(self._tree, scope)
        except ExprError:
            raise
        except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError) as exc:
            raise ExprError(f"evaluating {self.source!r}: {type(exc).__name__}: {exc}") from None

    # -- static check: only whitelisted syntax, returns the free names --------------------
    def _check(self, node: ast.AST, bound: frozenset[str]) -> set[str]:
        free: set[str] = set()
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float, str, bool, type(None))):
                raise ExprError(f"literal {node.value!r} not allowed in {self.source!r}")
        elif isinstance(node, ast.Name):
            if node.id not in _CONSTANT_NAMES and node.id not in bound and node.id not in FUNCTIONS:
                free.add(node.id)
        elif isinstance(node, (ast.List, ast.Tuple)):
            for elt in node.elts:
                free |= self._check(elt, bound)
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            free |= self._check(node.left, bound) | self._check(node.right, bound)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
            free |= self._check(node.operand, bound)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                free |= self._check(value, bound)
        elif isinstance(node, ast.Compare) and all(type(op) in _CMPOPS for op in node.ops):
            for sub in [node.left, *node.comparators]:
                free |= self._check(sub, bound)
        elif isinstance(node, ast.IfExp):
            for sub in (node.test, node.body, node.orelse):
                free |= self._check(sub, bound)
        elif isinstance(node, ast.Subscript):
            free |= self._check(node.value, bound) | self._check(node.slice, bound)
        elif isinstance(node, ast.Slice):
            for sub in (node.lower, node.upper, node.step):
                if sub is not None:
                    free |= self._check(sub, bound)
        elif isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS) or node.keywords:
                raise ExprError(f"only calls of {sorted(FUNCTIONS)} are allowed in {self.source!r}")
            for arg in node.args:
                free |= self._check(arg, bound)
        elif isinstance(node, (ast.ListComp, ast.GeneratorExp)):
            if len(node.generators) != 1 or not isinstance(node.generators[0].target, ast.Name):
                raise ExprError(f"comprehensions take one 'for NAME in ...' in {self.source!r}")
            gen = node.generators[0]
            free |= self._check(gen.iter, bound)
            inner = bound | {gen.target.id}  # type: ignore[union-attr]
            for cond in gen.ifs:
                free |= self._check(cond, inner)
            free |= self._check(node.elt, inner)
        else:
            raise ExprError(f"syntax {type(node).__name__} not allowed in {self.source!r}")
        return free

    # -- interpreter ------------------------------------------------------------------------
    def _eval(self, node: ast.AST, scope: dict[str, Any]) -> Any:
        ev = self._eval
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in scope:
                return scope[node.id]
            if node.id in _CONSTANT_NAMES:
                return _CONSTANT_NAMES[node.id]
            return FUNCTIONS[node.id]
        if isinstance(node, ast.List):
            return [ev(e, scope) for e in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(ev(e, scope) for e in node.elts)
        if isinstance(node, ast.BinOp):
            left, right = ev(node.left, scope), ev(node.right, scope)
            if left is None or right is None:
                return None
            return _BINOPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp):
            value = ev(node.operand, scope)
            if isinstance(node.op, ast.Not):
                return not value
            if value is None:
                return None
            return -value if isinstance(node.op, ast.USub) else +value
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                result: Any = True
                for value in node.values:
                    result = ev(value, scope)
                    if not result:
                        return result
                return result
            result = False
            for value in node.values:
                result = ev(value, scope)
                if result:
                    return result
            return result
        if isinstance(node, ast.Compare):
            left = ev(node.left, scope)
            for op, comparator in zip(node.ops, node.comparators):
                right = ev(comparator, scope)
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return ev(node.body, scope) if ev(node.test, scope) else ev(node.orelse, scope)
        if isinstance(node, ast.Subscript):
            return ev(node.value, scope)[ev(node.slice, scope)]
        if isinstance(node, ast.Slice):
            return slice(*(None if s is None else ev(s, scope) for s in (node.lower, node.upper, node.step)))
        if isinstance(node, ast.Call):
            return FUNCTIONS[node.func.id](*(ev(a, scope) for a in node.args))  # type: ignore[union-attr]
        if isinstance(node, (ast.ListComp, ast.GeneratorExp)):
            gen = node.generators[0]
            name = gen.target.id  # type: ignore[union-attr]
            out = []
            for item in ev(gen.iter, scope):
                inner = {**scope, name: item}
                if all(ev(cond, inner) for cond in gen.ifs):
                    out.append(ev(node.elt, inner))
            return out
        raise ExprError(f"cannot evaluate {type(node).__name__}")  # unreachable after _check


def compile_expr(source: Any) -> Expr:
    """Parse ``source``; numbers and booleans become constant expressions."""
    return source if isinstance(source, Expr) else Expr(source)
