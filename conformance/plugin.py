"""The keraspec pytest plugin: options, parametrisation from the spec, results, registry, shards.

Test functions ask for one of these fixtures and are parametrised from the spec:

``target``      -- a :class:`~keraspec.conformance.harness.Target` (layer x oracle x device x
                   dtype) for every layer to which the test's check applies; the check name is the
                   test name without ``test_`` (``test_forward`` -> ``forward``).
``error_rule``  -- (LayerSpec, Rule) for every rule a config can break.
``oracle_layer``-- (LayerSpec, oracle name) for every layer an oracle has (the spec checker).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import os
import re
import shlex
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from keraspec import spec as spec_module
from keraspec.spec import DTYPE_POLICIES, ORACLE_PACKAGES, ORACLES

from . import registry
from .catalogue import CHECK_DTYPES, CHECKS
from .harness import DEFAULT_FLAVOR, DEFAULT_IMPL, ImplUnderTest, Measurement, NotImplementedLayer, Target, applicable_checks
from .results import DEVICES, PROGRESS_CHOICES, CaseRecord, ResultsWriter, folder_problem
from .stats import FALSE_ALARM_PER_STATISTIC
from .strategies import Case, rules
_COMMON = dict(deadline=None, database=None, derandomize=False, print_blob=False,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=6, phases=[Phase.explicit, Phase.generate, Phase.shrink], **_COMMON)
settings.register_profile("dev", max_examples=20, **_COMMON)
settings.register_profile("thorough", max_examples=200, **_COMMON)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("keraspec", "keraspec conformance")
    group.addoption("--oracle", action="append", default=None, help=f"oracle(s) to compare with: {', '.join(ORACLES)}")
    group.addoption("--impl", default=None,
                    help=f"module with the Keras-named layer classes under test (env KERASPEC_IMPL; default {DEFAULT_IMPL})")
    group.addoption("--device", action="append", default=None, help="cpu and/or cuda (default: cpu, and cuda if present)")
    group.addoption("--dtype", action="append", default=None,
                    help=f"dtype policies to run, of {', '.join(DTYPE_POLICIES)} (default: all the layer's spec allows)")
    group.addoption("--layers", default=None, help="comma-separated layer names (default: every layer in the spec)")
    group.addoption("--families", default=None, help="comma-separated spec families")
    group.addoption("--checks", default=None, help=f"comma-separated checks of {', '.join(CHECKS)}")
    group.addoption("--examples", type=int, default=None, help="hypothesis examples per test (overrides the profile)")
    group.addoption("--shard", default=None, help="i/n: run the i-th of n disjoint shards of the suite")
    group.addoption("--results", default=os.environ.get("KERASPEC_RESULTS", "results"),
                    help="folder for the JSON-lines results (one file per process)")
    group.addoption("--corpus", default=None,
                    help="replay a recorded oracle corpus (a folder, or 'default' for the committed one) instead of the live oracle")
    group.addoption("--strict-registry", action="store_true", default=False,
                    help="fail on XPASS: a known-mismatch entry whose case now passes")
    group.addoption("--xfails-file", action="append", default=None,
                    help="a known-mismatch file of the implementation under test (same format as "
                         "keraspec/conformance/known_mismatches.yaml); its entries apply to that implementation only")
    group.addoption("--spec-dir", action="append", default=None,
                    help="a folder of spec *.yaml files for your own layers, loaded next to the package's "
                         "(repeatable; also env KERASPEC_SPEC_DIRS); their classes come from --impl")
    group.addoption("--progress", choices=PROGRESS_CHOICES, default="auto",
                    help="cases done, of the total, and the time left, on stderr: in place on a terminal, otherwise a "
                         "plain line each tenth of the run or minute (none in its first 30 s); auto: on unless the CI "
                         "environment variable is set (and not 'false' or '0')")


# -- option values -------------------------------------------------------------------------------
class OptionError(ValueError):
    """A plugin option with a value it cannot take: one line naming the option, the value and the rule."""


#: The plugin options whose values check_options judges (the dest names of pytest_addoption's options).
CHECKED_OPTIONS = ("oracle", "device", "dtype", "layers", "families", "checks", "shard", "examples", "results")


def check_options(values: Mapping[str, Any]) -> None:
    """Raise OptionError for the first option in ``values`` (dest -> value, as parsed) with a value
    the suite cannot run: unknown names (each option's list of names is given), a malformed shard,
    a non-positive example count, a results folder that cannot be written.  Run before collection,
    so a typo fails at once instead of selecting nothing or failing every test."""
    def one_of(option: str, given: Sequence[str] | None, known: Sequence[str]) -> None:
        for value in given or ():
            if value not in known:
                raise OptionError(f"--{option} {value!r} is not one of {', '.join(known)}")

    one_of("oracle", values.get("oracle"), ORACLES)
    one_of("device", values.get("device"), DEVICES)
    one_of("dtype", values.get("dtype"), DTYPE_POLICIES)
    for option in ("layers", "families", "checks"):
        text = values.get(option)
        if text is not None and not _csv(text):
            raise OptionError(f"--{option} {text!r} names nothing; give comma-separated names, or leave the option out for all")
    for name in _csv(values.get("layers")) or ():
        try:
            spec_module.lookup(name)
        except spec_module.UnknownLayerError as exc:
            raise OptionError(f"--layers: {exc}") from None
    one_of("families", _csv(values.get("families")), spec_module.families())
    one_of("checks", _csv(values.get("checks")), list(CHECKS))
    shard = values.get("shard")
    if shard is not None:
        match = re.fullmatch(r"(\d+)/(\d+)", shard)
        if match is None or not 1 <= int(match[1]) <= int(match[2]):
            raise OptionError(f"--shard {shard!r}: expected i/n with 1 <= i <= n, e.g. 1/4")
    examples = values.get("examples")
    if examples is not None and examples < 1:
        raise OptionError(f"--examples {examples}: expected an int >= 1")
    results = values.get("results")
    if results is not None and (problem := folder_problem(results)) is not None:
        raise OptionError(f"--results {results}: {problem}")


def use_spec_dirs(dirs: Sequence[str] | None) -> None:
    """Load the user spec folders of --spec-dir next to the package's spec (before any option names a
    layer); OptionError, one line, for a folder that is not one, an invalid file or a name clash."""
    from keraspec.spec.loader import SpecFileError, add_spec_dirs, load_all

    try:
        add_spec_dirs(dirs or [])
        load_all()
    except SpecFileError as exc:
        # The package's own files are loaded here too: name the option only when a folder was given.
        prefix = "--spec-dir: " if dirs else "spec: "
        raise OptionError(prefix + " ".join(str(exc).split())) from None


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would print usage and exit
        raise OptionError(message)


class _OptionReader:
    """Stands in for pytest's parser in pytest_addoption, so a command that runs pytest (keraspec
    replay) reads and checks the plugin's options from its arguments before starting pytest, from
    the one declaration of them."""

    def __init__(self) -> None:
        self.parser = _RaisingParser(add_help=False, allow_abbrev=False)

    def getgroup(self, *args: Any, **kwargs: Any) -> _OptionReader:
        return self

    def addoption(self, *names: str, **kwargs: Any) -> None:
        self.parser.add_argument(*names, **kwargs)


def read_options(argv: Sequence[str]) -> argparse.Namespace:
    """This plugin's options in a pytest command line (other arguments ignored), checked by
    check_options; OptionError for a value argparse or check_options refuses."""
    reader = _OptionReader()
    pytest_addoption(reader)  # type: ignore[arg-type]
    namespace, _ = reader.parser.parse_known_args(list(argv))
    use_spec_dirs(namespace.spec_dir)
    check_options(vars(namespace))
    return namespace


# -- configuration -------------------------------------------------------------------------------
def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


class _State:
    def __init__(self, config: pytest.Config):
        self.config = config
        try:
            check_options({name: config.getoption(name) for name in CHECKED_OPTIONS})
        except OptionError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.impl_name = config.getoption("impl") or os.environ.get("KERASPEC_IMPL") or DEFAULT_IMPL
        self._impl: ImplUnderTest | None = None
        self.oracles = config.getoption("oracle") or list(ORACLES)
        self.devices = config.getoption("device") or _default_devices()
        self.dtypes = config.getoption("dtype") or list(DTYPE_POLICIES)
        layers = _csv(config.getoption("layers"))  # aliases name their layer (check_options knows them all)
        self.layers = [spec_module.lookup(name).name for name in layers] if layers else None
        self.families = _csv(config.getoption("families"))
        self.checks = _csv(config.getoption("checks"))
        self.examples = config.getoption("examples")
        try:
            self.registry = registry.load() + [
                e for path in config.getoption("xfails_file") or [] for e in registry.load_for_impl(path, self.impl_name)]
        except registry.RegistryError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.strict = config.getoption("strict_registry")
        self.writer: ResultsWriter | None = None
        self.results_path: str | None = None
        self.header: dict[str, Any] = {}
        self.profile = config.getoption("hypothesis_profile", default=None) or "default"
        self.corpus = None
        corpus_path = config.getoption("corpus")
        if corpus_path:
            from .corpus import DEFAULT_CORPUS, Corpus, CorpusError
            from .harness import use_corpus

            try:
                self.corpus = Corpus(DEFAULT_CORPUS if corpus_path == "default" else corpus_path)
                if not hasattr(config, "workerinput"):  # the controller checks the arrays once for all workers
                    self.corpus.check_arrays()
            except CorpusError as exc:
                raise pytest.UsageError(f"--corpus {corpus_path}: {exc}") from None
            use_corpus(self.corpus)

    @property
    def impl(self) -> ImplUnderTest:
        if self._impl is None:
            self._impl = ImplUnderTest(self.impl_name)
        return self._impl

    def layer_specs(self) -> list[spec_module.LayerSpec]:
        out = []
        for name in spec_module.layers():
            s = spec_module.lookup(name)
            if self.layers and name not in self.layers:
                continue
            if self.families and s.family not in self.families:
                continue
            out.append(s)
        return out

    def wants(self, check: str) -> bool:
        return self.checks is None or check in self.checks


def _default_devices() -> list[str]:
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


_STATE_KEY = pytest.StashKey[_State]()


def state(config: pytest.Config) -> _State:
    return config.stash[_STATE_KEY]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "keraspec_case(layer, check, oracle, device, dtype): a conformance case")
    try:
        use_spec_dirs(config.getoption("spec_dir"))
    except OptionError as exc:
        raise pytest.UsageError(str(exc)) from None
    st_ = _State(config)
    config.stash[_STATE_KEY] = st_
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    shard = config.getoption("shard") or "1/1"
    run_id = os.environ.get("KERASPEC_RUN_ID") or getattr(config, "workerinput", {}).get("keraspec_run_id") or uuid.uuid4().hex[:12]
    os.environ["KERASPEC_RUN_ID"] = run_id
    if hasattr(config, "workerinput") or not _uses_xdist(config):
        # Opened on the first conformance case, so runs of other tests leave no results file.
        st_.results_path = os.path.join(config.getoption("results"), f"{run_id}-shard{shard.replace('/', 'of')}-{worker}.jsonl")
        st_.header = {
            "run_id": run_id, "shard": shard, "worker": worker, "started": _now(), "impl": st_.impl_name,
            "oracles": st_.oracles, "devices": st_.devices, "dtypes": st_.dtypes, "profile": st_.profile,
            "versions": _versions(), "command": " ".join(shlex.quote(a) for a in sys.argv),
        }


def _uses_xdist(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) or bool(getattr(config.option, "dist", "no") != "no")


def pytest_configure_node(node: Any) -> None:  # xdist: every worker joins the controller's run
    node.workerinput["keraspec_run_id"] = os.environ.get("KERASPEC_RUN_ID")


def pytest_unconfigure(config: pytest.Config) -> None:
    st_ = config.stash.get(_STATE_KEY, None)
    if st_ is not None and st_.writer is not None:
        st_.writer.close(_now())


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for pkg in ("keraspec", "torch", "tensorflow", "keras", "tf_keras", "hypothesis", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


# -- parametrisation -----------------------------------------------------------------------------
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    st_ = state(metafunc.config)
    check = metafunc.function.__name__.removeprefix("test_")
    if "target" in metafunc.fixturenames:
        params, ids = [], []
        if st_.wants(check):
            for s in st_.layer_specs():
                if check not in applicable_checks(s):
                    continue
                for oracle in st_.oracles:
                    if not s.has_oracle(oracle):
                        continue
                    for device in st_.devices:
                        for dtype in st_.dtypes:
                            if dtype not in s.input.dtypes or dtype not in CHECK_DTYPES.get(check, (dtype,)):
                                continue
                            params.append((s.name, oracle, device, dtype))
                            ids.append(f"{s.name}-{oracle}-{device}-{dtype}")
        metafunc.parametrize("target", params, ids=ids, indirect=True)
    if "error_rule" in metafunc.fixturenames:
        pairs = [(s, r) for s in st_.layer_specs() for r in rules(s)] if st_.wants("errors") else []
        metafunc.parametrize("error_rule", pairs, ids=[f"{s.name}-{r.id}" for s, r in pairs])
    if "oracle_layer" in metafunc.fixturenames:
        pairs2 = [(s, o) for s in st_.layer_specs() for o in st_.oracles if s.has_oracle(o)]
        metafunc.parametrize("oracle_layer", pairs2, ids=[f"{s.name}-{o}" for s, o in pairs2])
    if "oracle_limit" in metafunc.fixturenames:
        limits = [(s, o, lim) for s in st_.layer_specs() for lim in s.oracle_limits for o in lim.oracles
                  if o in st_.oracles and s.has_oracle(o)]
        metafunc.parametrize("oracle_limit", limits, ids=[f"{s.name}-{o}-{lim.name}" for s, o, lim in limits])
    if "oracle_rule" in metafunc.fixturenames:
        triples = [(s, o, r) for s in st_.layer_specs() for o in st_.oracles if s.has_oracle(o) for r in rules(s)
                   if all(s.params[p].in_oracle(o) for p in r.params if p in s.params)]
        metafunc.parametrize("oracle_rule", triples, ids=[f"{s.name}-{o}-{r.id}" for s, o, r in triples])


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Target:
    st_ = state(request.config)
    name, oracle, device, dtype = request.param
    from . import oracle as oracles

    if st_.corpus is not None:
        if not st_.corpus.has(name, oracle):
            pytest.skip(f"the corpus has no {oracle} runs of {name}")
    elif not oracles.available(oracle):
        pytest.skip(f"oracle {oracle} is not installed (replay the recorded corpus instead)")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            pytest.skip("no CUDA device")
    try:
        st_.impl.layer_class(name)
    except NotImplementedLayer as exc:
        pytest.skip(f"not implemented: {exc}")
    if oracle != DEFAULT_FLAVOR and st_.impl.use_flavor() is None:
        pytest.fail(f"{st_.impl_name} has no use_flavor(name), so it cannot be switched to {oracle}'s semantics "
                    f"(implementation contract); add it, or run with --oracle {DEFAULT_FLAVOR}", pytrace=False)
    return Target(spec_module.lookup(name), oracle, st_.impl, device, dtype)


@pytest.fixture
def impl_under_test(request: pytest.FixtureRequest) -> ImplUnderTest:
    return state(request.config).impl


# -- running a property --------------------------------------------------------------------------
def _stable_seed(text: str) -> int:
    return zlib.crc32(text.encode())


#: Quality notes kept per test (e.g. error messages that do not name the shape): the first few.
MAX_NOTES = 5


#: Drawn examples a test runs besides its explicit (covering) ones, whatever the profile's budget.
MIN_DRAWN_EXAMPLES = 2


def run_property(request: pytest.FixtureRequest, strategy: st.SearchStrategy[Any] | list[Any],
                 body: Callable[[Any], Measurement | None], describe: Callable[[Any], dict[str, Any]],
                 scope: dict[str, Any], explicit: list[Any] | None = None,
                 coverage: Callable[[list[Any]], dict[str, Any]] | None = None) -> None:
    """Run ``body`` on the ``explicit`` examples, then on drawn examples of ``strategy``; record the
    worst measurement, the (shrunk) failing example and, with ``coverage``, what the examples covered.

    The explicit examples cover every choice value whatever the example budget; the drawn ones fill
    the profile's budget (at least MIN_DRAWN_EXAMPLES).  The seed depends on the test's
    parametrisation only, so every check of one layer/oracle/dtype draws the same cases and shares
    the memoised oracle runs; a failure reproduces by re-running the same test id under the same profile.
    """
    st_ = state(request.config)
    info: dict[str, Any] = {"scope": scope, "measurement": Measurement(), "example": None}
    request.node.keraspec_info = info
    explicit = explicit or []
    budget = st_.examples or settings().max_examples
    # One failure, the shrunk first: several distinct ones would come as an ExceptionGroup whose
    # examples the registry could not tell apart.
    overrides = {"max_examples": max(MIN_DRAWN_EXAMPLES, budget - len(explicit)), "report_multiple_bugs": False}
    ran: list[Any] = []

    def one(example: Any) -> None:
        info["example"] = describe(example)
        info["example_obj"] = example
        ran.append(example)
        m = body(example)
        if m is not None:
            worst = info["measurement"]
            worst.max_abs_err = max(worst.max_abs_err, m.max_abs_err)
            worst.max_rel_err = max(worst.max_rel_err, m.max_rel_err)
            worst.tolerance = m.tolerance or worst.tolerance
            worst.notes.extend(n for n in m.notes if n not in worst.notes and len(worst.notes) < MAX_NOTES)
            worst.statistics += m.statistics

    if isinstance(strategy, list):  # replay: the recorded cases, each once, in order
        def prop() -> None:
            if not strategy:
                pytest.skip("no recorded cases for this target")
            for example in strategy:
                one(example)
    else:
        drawn = settings(**overrides)(hypothesis_seed(_stable_seed(
            request.node.callspec.id if hasattr(request.node, "callspec") else request.node.name))(given(strategy)(one)))

        def prop() -> None:
            for example in explicit:
                one(example)
            drawn()

    try:
        prop()
    except AssertionError as exc:
        if hasattr(exc, "max_abs_err"):  # a numeric failure: the report shows what was measured
            worst = info["measurement"]
            worst.max_abs_err, worst.max_rel_err, worst.tolerance = exc.max_abs_err, exc.max_rel_err, exc.tolerance
        entry = _registry_match(st_, scope, info.get("example_obj"))
        if entry is not None:
            info["xfail_entry"] = entry.id
            pytest.xfail(f"known mismatch {entry.id} ({entry.category}): {entry.reason} -- {str(exc).splitlines()[0]}")
        raise
    if coverage is not None:
        info["coverage"] = coverage(ran)
    entry = _registry_match(st_, scope, None, predicate_free_only=True)
    if entry is not None:
        info["xfail_entry"] = entry.id
        message = f"XPASS: known mismatch {entry.id} no longer fails; remove it from the registry"
        info["xpassed"] = message
        if st_.strict:
            pytest.fail(message)


def run_target_check(request: pytest.FixtureRequest, target: Target, check: str) -> None:
    """Run one spec-applicable check of ``target`` on drawn cases."""
    from .harness import CHECK_FUNCTIONS
    from .catalogue import input_values_for
    from .strategies import cases, covered_values, covering_cases, input_value_cases

    st_ = state(request.config)
    def comparable(case: Case) -> bool:  # not behind a limit of the oracle on this check (spec oracle_limits)
        return target.spec.oracle_limit(case.config, target.oracle, check, target.dtype) is None

    value_kinds = input_values_for(check)
    explicit: list[Case] = []
    if st_.corpus is not None:
        source: Any = [c for c in st_.corpus.cases(target.spec.name, target.oracle, target.dtype)
                       if comparable(c) and (c.values == "normal" or c.values in value_kinds)]
    else:
        source = cases(target.spec, target.oracle, target.dtype).filter(comparable)
        explicit = [c for c in covering_cases(target.spec, target.oracle, target.dtype)
                    + input_value_cases(target.spec, target.oracle, target.dtype, value_kinds) if comparable(c)]
    run_property(request, source, lambda case: CHECK_FUNCTIONS[check](target, case), Case.describe,
                 target_scope(request, target, check), explicit=explicit,
                 coverage=lambda ran: _coverage(target, check, ran))


def _coverage(target: Target, check: str, ran: list[Case]) -> dict[str, Any]:
    """What the examples a check ran covered of each choice parameter; a missing value names the
    oracle limit that keeps it from this oracle, check and dtype, where one does."""
    from .strategies import NAMED_OBJECT_COVERAGE_DTYPES, covered_choice_params, covered_values, effective_params

    out: dict[str, Any] = covered_values(target.spec, target.oracle, [c.settings() for c in ran])
    enumerated = covered_choice_params(target.spec, target.oracle, target.dtype)
    effective = effective_params(target.spec, target.oracle, ran)
    base = ran[0].config if ran else {}
    for name, cover in out.items():
        why = {}
        for value in cover["missing"]:
            try:
                limit = target.spec.oracle_limit({**base, name: value}, target.oracle, check, target.dtype)
            except Exception:  # noqa: BLE001 - a value this base config cannot take
                limit = None
            if limit is not None:
                why[repr(value)] = f"oracle limit {limit.name}"
            elif name not in enumerated:
                why[repr(value)] = (f"named objects are enumerated in {', '.join(NAMED_OBJECT_COVERAGE_DTYPES)} "
                                    "(strategies.NAMED_OBJECT_COVERAGE_DTYPES); drawn, not enumerated, here")
            else:
                why[repr(value)] = "not drawn"
        cover["why_missing"] = why
    for name, hit in effective.items():  # parameters that matter only with others: did one case give them an effect?
        out.setdefault(name, {"covered": [], "missing": []})["effective"] = hit
    return out


def _with_defaults(case: Case, oracle: str | None) -> dict[str, Any]:
    """The case's settings with the spec's defaults filled in (as the oracle defines them), so a
    registry predicate may name a parameter the case leaves at its default."""
    from keraspec import spec as spec_module

    try:
        layer = spec_module.lookup(case.layer)
    except KeyError:
        return case.settings()
    oracle = oracle if oracle in layer.oracles else next(iter(layer.oracles), "keras3")
    return {**layer.defaults(oracle), **case.settings()}


def _registry_match(st_: _State, scope: dict[str, Any], example: Any, predicate_free_only: bool = False) -> registry.Entry | None:
    attrs = dict(scope, impl=st_.impl_name)
    for entry in st_.registry:
        if not entry.matches_target(attrs):
            continue
        if predicate_free_only and entry.when is not None:
            continue
        if isinstance(example, Case) and not entry.matches_case(_with_defaults(example, scope.get("oracle")),
                                                                example.input_shapes, example.dtype,
                                                                example.magnitude, example.values):
            continue
        entry.matched.append(scope.get("test_id", ""))
        return entry
    return None


def target_scope(request: pytest.FixtureRequest, target: Target, check: str) -> dict[str, Any]:
    return {"layer": target.spec.name, "family": target.spec.family, "check": check, "oracle": target.oracle,
            "device": target.device, "dtype": target.dtype, "test_id": request.node.nodeid,
            "oracle_version": _oracle_version(target.oracle)}


def _oracle_version(oracle: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(ORACLE_PACKAGES[oracle])
    except metadata.PackageNotFoundError:
        return ""


# -- sharding ------------------------------------------------------------------------------------
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Under `xdist --dist loadgroup`, every check of one layer/oracle/dtype runs in one worker,
    # where the memoised oracle runs are shared.
    for item in items:
        callspec = getattr(item, "callspec", None)
        param = callspec.params.get("target") if callspec is not None else None
        if isinstance(param, tuple):
            item.add_marker(pytest.mark.xdist_group(name="-".join(param[:2] + param[3:])))
    shard = config.getoption("shard")
    if not shard:
        return
    index, total = (int(v) for v in shard.split("/"))
    if not 1 <= index <= total:
        raise pytest.UsageError(f"--shard {shard}: expected i/n with 1 <= i <= n")
    keep, drop = [], []
    for item in items:
        (keep if zlib.crc32(item.nodeid.encode()) % total == index - 1 else drop).append(item)
    items[:] = keep
    config.hook.pytest_deselected(items=drop)


# -- results -------------------------------------------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    st_ = state(item.config)
    if st_.results_path is None:
        return
    if not (report.when == "call" or (report.when == "setup" and report.skipped)):
        return
    info = getattr(item, "keraspec_info", None) or {}
    scope = info.get("scope") or _scope_from_item(item)
    if scope is None:
        return
    if st_.writer is None:
        st_.writer = ResultsWriter(st_.results_path, st_.header)
    status = _status(report, info)
    message = ""
    if report.failed or hasattr(report, "wasxfail"):
        message = getattr(report, "wasxfail", "") or _failure_text(report)
    elif report.skipped:
        message = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    m: Measurement = info.get("measurement") or Measurement()
    tol = m.tolerance
    st_.writer.add(CaseRecord(
        layer=scope["layer"], family=scope.get("family", ""), check=scope["check"], oracle=scope.get("oracle", "-"),
        impl=st_.impl_name, device=scope.get("device", "cpu"), dtype=scope.get("dtype", "-"), status=status,
        test_id=item.nodeid, message=message or info.get("xpassed", ""), max_abs_err=m.max_abs_err, max_rel_err=m.max_rel_err,
        atol=tol.atol if tol else None, rtol=tol.rtol if tol else None,
        example=info.get("example") if status != "passed" else None,
        seed=str(_stable_seed(item.callspec.id)) if hasattr(item, "callspec") else None,
        repro=_repro(item, st_), duration_s=round(report.duration, 3), xfail_entry=info.get("xfail_entry"),
        extra={**({"notes": m.notes} if m.notes else {}), **({"coverage": info["coverage"]} if "coverage" in info else {}),
               # A statistical check's chance of failing a correct implementation (union bound).
               **({"false_alarm_rate": m.statistics * FALSE_ALARM_PER_STATISTIC} if m.statistics else {})},
    ))


def _scope_from_item(item: pytest.Item) -> dict[str, Any] | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    check = item.originalname.removeprefix("test_") if hasattr(item, "originalname") else item.name
    param = callspec.params.get("target")
    if isinstance(param, tuple):
        name, oracle, device, dtype = param
        return {"layer": name, "family": spec_module.lookup(name).family, "check": check, "oracle": oracle,
                "device": device, "dtype": dtype}
    for key in ("error_rule", "oracle_layer", "oracle_rule"):
        if isinstance(callspec.params.get(key), tuple):
            s = callspec.params[key][0]
            oracle = callspec.params[key][1] if key != "error_rule" else "-"
            return {"layer": s.name, "family": s.family, "check": check, "oracle": oracle if isinstance(oracle, str) else "-",
                    "device": "cpu", "dtype": "-"}
    return None


def _status(report: pytest.TestReport, info: dict[str, Any]) -> str:
    if hasattr(report, "wasxfail"):
        return "xpassed" if report.passed else "xfailed"
    if report.skipped:
        text = str(report.longrepr)
        return "not_implemented" if "not implemented:" in text else "skipped"
    if report.failed:
        return "failed" if report.when == "call" else "error"
    return "xpassed" if info.get("xpassed") else "passed"


def _failure_text(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return text[:4000]


def _repro(item: pytest.Item, st_: _State) -> str:
    parts = [".venv/bin/pytest", shlex.quote(item.nodeid), "-p", "no:randomly", f"--hypothesis-profile={st_.profile}"]
    if st_.impl_name != DEFAULT_IMPL:
        parts.append(f"--impl={st_.impl_name}")
    if st_.examples:
        parts.append(f"--examples={st_.examples}")
    return " ".join(parts)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    st_ = config.stash.get(_STATE_KEY, None)
    if st_ is None or hasattr(config, "workerinput"):
        return
    unused = [e.id for e in st_.registry if not e.matched]
    if unused and st_.writer is not None and not _uses_xdist(config):
        terminalreporter.write_line(f"keraspec: known-mismatch entries that matched nothing in this run: {', '.join(unused)}")
    if st_.writer is not None:
        terminalreporter.write_line(f"keraspec: results written to {st_.writer.path}")


# -- progress ------------------------------------------------------------------------------------
#: Values of CI that do not mean "in CI" (unset counts as "").
_NOT_CI = ("", "false", "0")
#: Not a terminal: a plain line each time another 1/PROGRESS_LINE_STEPS of the cases is done, or
#: when PROGRESS_LINE_S seconds have passed without one; none in a run's first PROGRESS_QUIET_S, so
#: short runs stay quiet.
PROGRESS_LINE_STEPS = 10
PROGRESS_LINE_S = 60.0
PROGRESS_QUIET_S = 30.0
#: Room a status needs after pytest's dots on the same terminal line; with less it waits for the next line.
_MIN_ROOM = 24
_CLEAR_TO_EOL = "\x1b[K"
_SAVE_CURSOR, _RESTORE_CURSOR = "\x1b7", "\x1b8"


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the CI environment variable marks a CI run (set, and not empty, "false" or "0")."""
    return environ.get("CI", "").strip().lower() not in _NOT_CI


def progress_mode(choice: str, stream: IO[str], environ: Mapping[str, str] = os.environ) -> str:
    """How progress is shown on ``stream``: "off"; "inplace" (a terminal: one line rewritten) or
    "lines" (anything else: occasional plain lines).  ``choice`` is the --progress value."""
    if choice == "off" or (choice == "auto" and in_ci(environ)):
        return "off"
    try:
        return "inplace" if stream.isatty() else "lines"
    except (AttributeError, ValueError):  # a closed or fake stream
        return "lines"


def format_duration(seconds: float) -> str:
    """``seconds`` as 45s, 3m05s or 1h02m."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Units (test cases, recorded groups) done out of a total, failures, and the time left
    estimated from the average rate so far: the suite's cases are ordered by layer, not by cost, so
    a longer window predicts better than a recent one."""

    def __init__(self, noun: str = "cases", clock: Callable[[], float] = time.monotonic):
        self.noun = noun
        self.clock = clock
        self.total = 0
        self.done = 0
        self.failed = 0
        self.started: float | None = None

    def start(self, total: int) -> None:
        """The total is known; the clock starts (again only if it has not)."""
        self.total = max(self.total, total)
        if self.started is None:
            self.started = self.clock()

    def advance(self, failed: bool = False) -> None:
        if self.started is None:
            self.started = self.clock()
        self.done += 1
        self.failed += int(failed)

    def elapsed(self) -> float:
        return 0.0 if self.started is None else self.clock() - self.started

    def remaining_s(self) -> float | None:
        """Seconds left at the rate so far; None before anything is done or without a total."""
        if self.done == 0 or self.total <= 0:
            return None
        return self.elapsed() / self.done * max(0, self.total - self.done)

    def line(self, prefix: str = "keraspec: ") -> str:
        """E.g. ``keraspec: 412/3671 cases (11%), 3 failed, 4m12s elapsed, about 33m15s left``."""
        total = str(self.total) if self.total else "?"
        text = f"{prefix}{self.done}/{total} {self.noun}"
        if self.total:
            text += f" ({100 * min(self.done, self.total) // self.total}%)"
        if self.failed:
            text += f", {self.failed} failed"
        text += f", {format_duration(self.elapsed())} elapsed"
        remaining = self.remaining_s()
        if self.total and self.done >= self.total:
            return text
        return text + (f", about {format_duration(remaining)} left" if remaining is not None else "")


class ProgressDisplay:
    """Shows a Progress on a stream (stderr unless given) in the mode progress_mode chose.

    In place, the status is one line rewritten after a carriage return; when pytest writes its
    dots to the same terminal, it instead trails the dots on their line (cursor saved and restored),
    and ``erase`` clears it before pytest writes again, so the two never garble each other."""

    def __init__(self, progress: Progress, mode: str, stream: IO[str] | None = None,
                 shared_line: Callable[[], tuple[int, int] | None] | None = None,
                 line_writer: Callable[[str], None] | None = None):
        self.progress = progress
        self.mode = mode
        self._stream = stream
        #: (column, width) of the line pytest writes on, where that line is on our terminal too.
        self.shared_line = shared_line
        #: Writes a plain line where pytest's output and ours reach one file (a log, a pipe): pytest's
        #: writer, which starts a new line after its dots and keeps count of its columns.
        self.line_writer = line_writer
        self._shown = False  # a status is on screen (in place)
        self._drawn = False  # one has been, this run
        self._last_line_at: float | None = None
        self._last_fraction_step = 0
        self._last_line = ""
        self.lines_written = 0

    @property
    def stream(self) -> IO[str]:
        return self._stream if self._stream is not None else sys.stderr  # the real one between tests

    def start(self, total: int) -> None:
        self.progress.start(total)
        if self.mode == "inplace" and self.shared_line is None:
            self._draw()  # "0/N" at once; after pytest's dots, only once they have started

    def advance(self, failed: bool = False) -> None:
        self.progress.advance(failed)
        self.update()

    def update(self) -> None:
        if self.mode == "inplace":
            self._draw()
        elif self.mode == "lines" and self._line_due():
            self._write_line()

    def _line_due(self) -> bool:
        p = self.progress
        elapsed = p.elapsed()
        if elapsed < PROGRESS_QUIET_S or (self.line_writer is not None and p.total and p.done >= p.total):
            return False  # short runs stay quiet; at the end, pytest's own summary follows on the same stream
        step = p.done * PROGRESS_LINE_STEPS // p.total if p.total > 0 else 0
        due = step > self._last_fraction_step or elapsed - (self._last_line_at or 0.0) >= PROGRESS_LINE_S
        if due:
            self._last_fraction_step, self._last_line_at = step, elapsed
        return due

    def _draw(self) -> None:
        shared = self.shared_line() if self.shared_line is not None else None
        if shared is None:
            self._write("\r" + self.progress.line() + _CLEAR_TO_EOL)
            self._shown = self._drawn = True
            return
        column, width = shared
        room = width - column - 2  # a space before; never the last column (the terminal would wrap)
        if room < _MIN_ROOM:
            return
        text = self.progress.line(prefix="")[:room]
        self._write(_SAVE_CURSOR + " " + text + _CLEAR_TO_EOL + _RESTORE_CURSOR)
        self._shown = self._drawn = True

    def before_pytest_writes(self) -> None:
        """pytest is about to write: clear a status that shares its line (one on a line of its own,
        after a carriage return, stays: clearing it before every test would make it flicker)."""
        if self.shared_line is not None:
            self.erase()

    def erase(self) -> None:
        """Clear an in-place status."""
        if self._shown:
            shared = self.shared_line is not None and self.shared_line() is not None
            self._write(_CLEAR_TO_EOL if shared else "\r" + _CLEAR_TO_EOL)
            self._shown = False

    def finish(self) -> None:
        """The run is over: clear the in-place status (pytest's summary follows), or close the
        occasional lines with a last one."""
        self.erase()
        # A last line, unless it would repeat the previous one, or pytest's summary follows on the same stream.
        if self.mode == "lines" and self.lines_written and self.line_writer is None and self.progress.line() != self._last_line:
            self._write_line()
        elif self.mode == "inplace" and self.shared_line is None and self._drawn:
            self._write(self.progress.line() + "\n")  # the last state stays on screen, on its own line

    def _write_line(self) -> None:
        self._last_line = self.progress.line()
        self.lines_written += 1
        if self.line_writer is not None:
            self.line_writer(self._last_line)
        else:
            self._write(self._last_line + "\n")

    def _write(self, text: str) -> None:
        try:
            sys.stdout.flush()  # pytest's dots first, where both streams reach one terminal
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed stream must not fail the run
            self.mode = "off"


class ProgressPlugin:
    """The progress of a pytest run, registered in the controlling process only (an xdist worker
    sees its own tests; the controller gets every worker's reports and the collected ids)."""

    def __init__(self, display: ProgressDisplay):
        self.display = display
        self._failed: set[str] = set()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if session.items:
            self.display.start(len(session.items))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        # xdist's controller collects nothing; each worker collects the same (sharded, selected) ids.
        self.display.start(len(ids))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logstart(self) -> Any:
        self.display.before_pytest_writes()  # the terminal reporter may write a file name
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Any:
        self.display.before_pytest_writes()  # the terminal reporter writes its letter
        try:
            return (yield)
        finally:
            if report.failed and not hasattr(report, "wasxfail"):
                self._failed.add(report.nodeid)
            if report.when == "teardown":  # every test ends with one, whatever happened before
                self.display.progress.advance(failed=report.nodeid in self._failed)
                self._failed.discard(report.nodeid)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logfinish(self) -> Any:
        self.display.before_pytest_writes()  # the reporter may end the line with its percentage
        try:
            return (yield)
        finally:
            self.display.update()  # once a test, after the reporter's last word on it

    def pytest_sessionfinish(self) -> None:
        # A plain hook runs inside the terminal reporter's wrapper: before its summary.
        self.display.finish()


_PROGRESS_PLUGIN = "keraspec-progress"


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _register_progress(session.config)  # here: the terminal reporter it may share a line with exists


def _register_progress(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or config.pluginmanager.has_plugin(_PROGRESS_PLUGIN):
        return
    mode = progress_mode(config.getoption("progress"), sys.stderr)
    if mode == "off":
        return
    display = ProgressDisplay(Progress(), mode)
    writer = getattr(config.pluginmanager.get_plugin("terminalreporter"), "_tw", None)
    if writer is not None and _stdout_is_stderr():
        # pytest's output and ours reach one place: share its line, or its writer, so the two
        # never garble each other.
        if mode == "inplace":
            display.shared_line = lambda: (writer.width_of_current_line, writer.fullwidth)
        else:
            display.line_writer = lambda text: _own_line(writer, text)
    config.pluginmanager.register(ProgressPlugin(display), _PROGRESS_PLUGIN)


def _stdout_is_stderr() -> bool:
    try:
        return os.path.samestat(os.fstat(sys.stdout.fileno()), os.fstat(sys.stderr.fileno()))
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):  # a stream without a file
        return False


def _own_line(writer: Any, text: str) -> None:
    """``text`` on a line of its own through pytest's terminal writer (after its dots, if any)."""
    if writer.width_of_current_line:
        writer.line()
    writer.line(text)
