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

Bad input is one line on stderr naming the option, value or file and the rule it breaks, and exit
status 2 (EXIT_BAD_INPUT), never a traceback: argparse's errors come out as one line, and a
command's ``func`` raises :class:`BadInput` (printed as ``keraspec COMMAND: ...``).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import textwrap
from importlib.metadata import EntryPoint, entry_points
from typing import Any, NoReturn

from . import ExprError, SpecConfigError, SpecTypeError, UnknownLayerError, families, layers, lookup
from .loader import SpecFileError, add_spec_dirs, load_all
from .model import LayerSpec

#: Exit status for input the command cannot read or act on (argparse's own): malformed JSON or
#: shapes, unknown names, missing files.  1 is kept for an answer that is "no" (a config the spec
#: rejects, a command that could not be loaded), 0 for success.
EXIT_BAD_INPUT = 2
#: How much of an offending value an error message quotes (a pasted config can be long).
_QUOTE_LIMIT = 80


class BadInput(Exception):
    """Input a command cannot act on.  ``main`` prints it as one line, ``keraspec COMMAND: ...``, and
    exits with EXIT_BAD_INPUT; the message names the option, the value and the rule it breaks.
    Plugged-in commands raise it too (see the module docstring)."""


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line naming the command (argparse prints the usage
    first, which for a command with many options wraps over several lines)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {one_line(message)} (see '{self.prog} --help')\n")


def one_line(text: str) -> str:
    """``text`` with its line breaks folded, so an error message stays one line."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def quoted(value: str) -> str:
    """``value`` quoted for an error message, shortened when long."""
    return repr(value if len(value) <= _QUOTE_LIMIT else value[:_QUOTE_LIMIT] + "...")


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
    if s.input.tie:
        parts.append("sizes shared: " + "; ".join(" = ".join(f"input {k} axis {a}" for k, a in group) for group in s.input.tie))
    if s.call_input_names:
        parts.append(f"called as layer({s.call_input_names[0]}, " + ", ".join(f"{n}=..." for n in s.call_input_names[1:]) + ")")
    if s.call_arguments:
        parts.append("call arguments:\n" + "\n".join(
            f"  {p.name} ({p.type}, default {_fmt(p.default)}): {p.doc}" for p in s.call_arguments.values()))
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


_SHAPE_HELP = ("a tuple of sizes with the batch axis, None for unknown, e.g. '(None, 10, 4)' "
               "(a list of them for several inputs)")
_CONFIG_HELP = 'a JSON object of constructor arguments, e.g. \'{"units": 8}\''
#: JSON's names for what json.loads returns, for messages.
_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def parse_config(text: str, option: str = "--config") -> dict[str, Any]:
    """A layer config from JSON text; BadInput naming ``option`` unless it is a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{option} {quoted(text)} is not valid JSON ({exc.msg}: character {exc.pos}); "
                       f"expected {_CONFIG_HELP}") from None
    if not isinstance(value, dict):
        raise BadInput(f"{option} {quoted(text)} is a JSON {_JSON_KINDS.get(type(value), 'value')}, not an object; "
                       f"expected {_CONFIG_HELP}")
    return value


#: What a literal that is not a shape is, for messages.
_LITERAL_KINDS = {int: "a number", float: "a number", bool: "a boolean", str: "a string", dict: "a dict"}


def parse_shape(text: str, option: str = "--input-shape") -> tuple[Any, ...] | list[tuple[Any, ...]]:
    """An input shape (or a list of them) from Python-literal text; BadInput naming ``option`` unless
    every entry is a size (an int >= 0) or None and a shape has at least the batch axis."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise BadInput(f"{option} {quoted(text)} is not a shape; expected {_SHAPE_HELP}") from None
    if isinstance(value, list) and value and all(isinstance(v, (list, tuple)) for v in value):
        return [_shape(v, text, option) for v in value]
    if not isinstance(value, (list, tuple)):
        kind = _LITERAL_KINDS.get(type(value), f"a {type(value).__name__}")
        raise BadInput(f"{option} {quoted(text)} is {kind}, not a shape; expected {_SHAPE_HELP}")
    return _shape(value, text, option)


def _shape(value: list[Any] | tuple[Any, ...], text: str, option: str) -> tuple[Any, ...]:
    if not value:
        raise BadInput(f"{option} {quoted(text)} has no axes; a shape has at least the batch axis, e.g. '(None, 4)'")
    for dim in value:
        if not (dim is None or (isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0)):
            raise BadInput(f"{option} {quoted(text)}: {dim!r} is not a size; each axis is an int >= 0, or None for unknown")
    return tuple(value)


def _check_inputs(s: LayerSpec, config: dict[str, Any], shape: Any) -> None:
    """The spec's rules on the number and rank of inputs (validate_input checks the constraints)."""
    shapes = shape if isinstance(shape, list) else [shape]
    env = s.env(config, shape)
    if not s.input.min_count <= len(shapes) <= s.input.max_count:
        takes = s.input.min_count if s.input.min_count == s.input.max_count else f"{s.input.min_count} to {s.input.max_count}"
        raise SpecConfigError(s.name, ["input_shape"], "input.count", f"takes {takes} input(s), got {len(shapes)}")
    for i, one in enumerate(shapes):
        if s.input.rank is not None:
            rank = s.input.rank(env)
            if len(one) != rank:
                raise SpecConfigError(s.name, ["input_shape"], "input.rank",
                                      f"input {i} must have rank {rank} (with the batch axis), got {len(one)}: {one}")
        elif s.input.enforce_min_rank and len(one) < s.input.min_rank:
            raise SpecConfigError(s.name, ["input_shape"], "input.rank",
                                  f"input {i} must have rank >= {s.input.min_rank} (with the batch axis), got {len(one)}: {one}")


def _use_spec_dirs(args: argparse.Namespace) -> None:
    """Load the user spec folders of ``--spec-dir`` (and KERASPEC_SPEC_DIRS) next to the package's;
    a folder that is not one, an invalid file or a name clash is bad input (one line, exit 2)."""
    try:
        add_spec_dirs(args.spec_dir or [])
        load_all()
    except SpecFileError as exc:
        raise BadInput(one_line(str(exc))) from None


def _cmd_spec(args: argparse.Namespace) -> int:
    _use_spec_dirs(args)
    s = lookup(args.name)
    if args.config is None and args.input_shape is None:
        print(describe(s))
        return 0
    # Malformed input is refused (exit 2) before the spec judges anything (exit 1).
    config = parse_config(args.config) if args.config is not None else {}
    shape = parse_shape(args.input_shape) if args.input_shape is not None else None
    try:
        normalized = s.validate(config)
        if shape is not None:
            _check_inputs(s, normalized, shape)
            s.validate_input(config, shape)
            print(f"output shape: {s.output_shape(config, shape)}")
            for name, wshape in s.weight_shapes(config, shape):
                print(f"weight {name}: {wshape}")
        else:
            print("valid; normalized config:")
            for key, value in normalized.items():
                print(f"  {key} = {_fmt(value)}")
    except (SpecConfigError, SpecTypeError, ExprError) as exc:
        # The spec's answer, not bad input: the config (or shape) breaks a rule, or a rule of the
        # spec cannot be evaluated on this shape (ExprError names the expression).
        print(f"invalid: {type(exc).__name__}: {one_line(str(exc))}", file=sys.stderr)
        return 1
    return 0


def _cmd_layers(args: argparse.Namespace) -> int:
    _use_spec_dirs(args)
    known = families()
    if args.family is not None and args.family not in known:
        raise BadInput(f"--family {quoted(args.family)} is not a family of the spec; the families are {', '.join(known)}")
    for family in known:
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


_SPEC_EPILOG = """exit status: 0 -- the description, or the config (and input shape) is valid and its shapes are printed;
1 -- the spec rejects the config or input shape: an answer, printed as one 'invalid: ...' line naming the
rule; 2 -- input that cannot be read: malformed JSON, a config that is not a JSON object, a malformed
shape, an unknown layer or option (one line naming it)."""


_SPEC_DIR_HELP = ("a folder of spec *.yaml files for your own layers, loaded next to the package's (repeatable; "
                  "also the environment variable KERASPEC_SPEC_DIRS)")


def main(argv: list[str] | None = None) -> int:
    """Run the ``keraspec`` command line; returns the exit status (see EXIT_BAD_INPUT)."""
    parser = _Parser(prog="keraspec", description="Keras layer spec, implementation and conformance.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("spec", help="show a layer's spec, or evaluate it on a config and input shape",
                       epilog=_SPEC_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="Keras class name or alias, e.g. Dense")
    p.add_argument("--config", help=_CONFIG_HELP)
    p.add_argument("--input-shape", help=_SHAPE_HELP)
    p.add_argument("--spec-dir", action="append", help=_SPEC_DIR_HELP)
    p.set_defaults(func=_cmd_spec)
    p = sub.add_parser("layers", help="list the layers in the spec")
    p.add_argument("--family", help="only this family's layers")
    p.add_argument("--spec-dir", action="append", help=_SPEC_DIR_HELP)
    p.set_defaults(func=_cmd_layers)
    argv = sys.argv[1:] if argv is None else list(argv)
    _register_plugins(sub, argv)
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passes_through", False):
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        return int(args.func(args))
    except (BadInput, UnknownLayerError, SpecFileError) as exc:
        print(f"keraspec {args.command}: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
