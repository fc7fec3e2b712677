"""The ``keraspec`` command line.

    keraspec spec NAME                          the layer's parameters, defaults, domains, constraints
    keraspec spec NAME --config JSON --input-shape SHAPE
                                                its output and weight shapes, or the validation error
    keraspec layers [--family F]                every layer in the spec

The spec package stands alone: the other subcommands (``record`` and ``replay`` from
the conformance package, ``report`` from the reports package) are plugged in through the
``keraspec.commands`` entry-point group, never imported here by name.  Each entry point is a
function ``register(subparsers)`` that adds its subparser and sets ``func`` (called with the parsed
arguments, returns the exit status) and, to receive arguments it does not declare as
``args.extra``, ``passes_through=True``.  Only the entry point of the command being run is loaded
(all of them for ``--help`` or an unknown command).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import textwrap
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from . import SpecConfigError, SpecTypeError, UnknownLayerError, families, layers, lookup
from .model import LayerSpec


def _fmt(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(out)


def describe(s: LayerSpec) -> str:
    """A readable, plain-text description of a layer spec."""
    parts = [f"{s.name}  ({s.family})" + (f"  aliases: {', '.join(s.aliases)}" if s.aliases else "")]
    if s.doc:
        parts.append(textwrap.fill(s.doc, 100))
    parts.append("oracles: " + ", ".join(f"{k} ({v})" for k, v in s.oracles.items()))
    rows = []
    for p in s.params.values():
        default = "(required)" if p.required else _fmt(p.default)
        domain = p.domain.describe()
        if p.length is not None:
            domain = (domain + "; " if domain else "") + f"length {p.length.source}"
        if p.expand:
            domain += "; an int repeats to every axis"
        if p.nullable:
            domain += "; or None" + (f" (= {p.null_means!r})" if p.null_means is not None else "")
        rows.append([p.name, p.type, default, domain.strip("; "), p.doc])
    if rows:
        parts.append("\nparameters:\n" + _table(rows, ["name", "type", "default", "domain", "doc"]))
    for oracle, values in s.oracle_defaults.items():
        parts.append(f"defaults in {oracle}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in values.items()))
    if s.constraints:
        crow = [[c.name, ", ".join(c.params), c.rule.source, c.message, c.stage] for c in s.constraints]
        parts.append("\nconstraints:\n" + _table(crow, ["name", "parameters", "rule", "message", "stage"]))
    accepts = [(f"{p.name}", o, r) for p in s.params.values() for o, r in p.oracle_accepts.items()]
    accepts += [(c.name, o, r) for c in s.constraints for o, r in c.oracle_accepts.items()]
    if accepts:
        parts.append("\nenforced by the implementation only:\n" + "\n".join(f"  {n} -- {o} accepts: {r}" for n, o, r in accepts))
    if s.oracle_limits:
        parts.append("\nnot comparable with an oracle:\n" + "\n".join(
            f"  {lim.name} -- {', '.join(lim.oracles)} when {lim.when.source}: {lim.reason}" for lim in s.oracle_limits))
    i = s.input
    count = f"{i.min_count}" if i.min_count == i.max_count else f"{i.min_count}..{i.max_count}"
    rank = i.rank.source if i.rank is not None else f"{i.min_rank}..{i.max_rank}"
    parts.append(f"\ninputs: {count} tensor(s) of rank {rank}, dtypes {', '.join(i.dtypes)}")
    parts.append(f"output shape: {s.output_shape_rule.source}")
    if s.weights:
        parts.append("weights (Keras order):\n" + "\n".join(
            f"  {w.name}: {w.shape.source}" + (f"  when {w.when.source}" if w.when else "")
            + ("" if w.trainable else "  (non-trainable)")
            + "".join(f"  ({o} names it {n})" for o, n in w.oracle_names.items()) for w in s.weights))
    parts.append(f"training behaviour: {s.training}")
    parts.append("masking: " + ("supported" if s.masking.get("supports") else "not supported")
                 + (f" -- {s.masking['doc']}" if s.masking.get("doc") else ""))
    if s.excluded_params:
        parts.append("left out of the spec:\n" + "\n".join(f"  {k}: {v}" for k, v in s.excluded_params.items()))
    return "\n".join(parts)


def _parse_shape(text: str) -> Any:
    value = ast.literal_eval(text)
    if isinstance(value, list) and value and isinstance(value[0], (list, tuple)):
        return [tuple(v) for v in value]
    return tuple(value)


def _cmd_spec(args: argparse.Namespace) -> int:
    s = lookup(args.name)
    if args.config is None and args.input_shape is None:
        print(describe(s))
        return 0
    config = json.loads(args.config or "{}")
    try:
        normalized = s.validate(config)
        if args.input_shape is not None:
            shape = _parse_shape(args.input_shape)
            s.validate_input(config, shape)
            print(f"output shape: {s.output_shape(config, shape)}")
            for name, wshape in s.weight_shapes(config, shape):
                print(f"weight {name}: {wshape}")
        else:
            print("valid; normalized config:")
            for key, value in normalized.items():
                print(f"  {key} = {_fmt(value)}")
    except (SpecConfigError, SpecTypeError) as exc:
        print(f"invalid: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_layers(args: argparse.Namespace) -> int:
    for family in families():
        if args.family and family != args.family:
            continue
        print(f"{family}: {', '.join(layers(family))}")
    return 0


#: The entry-point group other packages add subcommands through (see the module docstring).
COMMAND_GROUP = "keraspec.commands"
_BUILTIN = ("spec", "layers")


def _command_entry_points() -> dict[str, EntryPoint]:
    """The plugged-in subcommands by name (a built-in name cannot be taken over)."""
    return {ep.name: ep for ep in entry_points(group=COMMAND_GROUP) if ep.name not in _BUILTIN}


def _requested_command(argv: list[str]) -> str | None:
    """The subcommand ``argv`` names: its first word that is not an option (the top-level parser
    has no options of its own besides --help)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _register_plugins(sub: Any, argv: list[str]) -> None:
    """Load and register the requested plugged-in command (every one for --help or an unknown
    command); the others get a placeholder, so usage lines still list them."""
    plugins = _command_entry_points()
    wanted = _requested_command(argv)
    load_all = wanted not in plugins and wanted not in _BUILTIN
    for name, ep in sorted(plugins.items()):
        if not (load_all or name == wanted):
            _placeholder(sub, name, ep, "not loaded")
            continue
        try:
            ep.load()(sub)
        except Exception as exc:  # a broken plugin must not take `keraspec spec` or --help down
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            _placeholder(sub, name, ep, reason, help=f"(unavailable: {reason})")


def _placeholder(sub: Any, name: str, ep: EntryPoint, reason: str, help: str | None = None) -> None:
    p = sub.add_parser(name, help=help, add_help=False)
    p.set_defaults(func=lambda args: _unavailable(name, ep, reason), passes_through=True)


def _unavailable(name: str, ep: EntryPoint, reason: str) -> int:
    print(f"keraspec: the '{name}' command ({ep.value}) could not be loaded: {reason}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="keraspec", description="Keras layer spec, implementation and conformance.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("spec", help="show a layer's spec, or evaluate it on a config and input shape")
    p.add_argument("name")
    p.add_argument("--config", help='JSON config, e.g. \'{"units": 8}\'')
    p.add_argument("--input-shape", help="input shape with the batch axis, e.g. '(None, 10, 4)'")
    p.set_defaults(func=_cmd_spec)
    p = sub.add_parser("layers", help="list the layers in the spec")
    p.add_argument("--family")
    p.set_defaults(func=_cmd_layers)
    argv = sys.argv[1:] if argv is None else list(argv)
    _register_plugins(sub, argv)
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passes_through", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        return int(args.func(args))
    except UnknownLayerError as exc:
        print(f"keraspec: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
