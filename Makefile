# keraspec: `make report` (the main job) and `make test` set everything up on a new machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JOBS ?= 2
PROFILE ?= ci
# Empty: every dtype policy each layer's spec allows (float32, float64, float16, bfloat16 and the
# mixed policies; the one list is keraspec.spec.DTYPE_POLICIES).  `make test DTYPES=float32` narrows.
DTYPES ?=
DTYPE_ARGS := $(foreach d,$(DTYPES),--dtype $(d))
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0
export KERAS_BACKEND := tensorflow

.PHONY: install test report bench lock clean

# The project's own progress lines; pip stays quiet (it speaks up on errors).
PIP_QUIET := --quiet --disable-pip-version-check
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || { echo "keraspec: creating $(VENV) ($(PYTHON))"; $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV); }
	@echo "keraspec: installing pip 26.3 into $(VENV)"
	@$(PY) -m pip install $(PIP_QUIET) --upgrade pip==26.3
	@echo "keraspec: installing keraspec (editable) with its pinned dependencies from constraints.txt (torch, TensorFlow, Keras, pytest; minutes on a new machine)"
	@$(PY) -m pip install $(PIP_QUIET) -c constraints.txt -e '.[oracle,test]'
	@touch $(STAMP)
	@echo "keraspec: $(VENV) is ready"

install: $(STAMP)

# One thread per pytest-xdist worker: the suite's tensors are tiny, and with $(JOBS) workers on as
# many cores TensorFlow's and torch's thread pools only contend (measured: a third less wall time).
test report mutants: export OMP_NUM_THREADS = 1
test report mutants: export TF_NUM_INTRAOP_THREADS = 1
test report mutants: export TF_NUM_INTEROP_THREADS = 1

# The CI profile: every check for every layer, derandomised and bounded, on 2 cores.
test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --dist loadgroup --hypothesis-profile=$(PROFILE) --strict-registry $(DTYPE_ARGS) \
		--results results/latest -q

# Runs the suite (failures included) on keraspec.impl against the live oracles, then Keras 3's own
# torch backend as a second implementation: live against tf_keras (Keras 3 picks one backend per
# process, and its TensorFlow one is the keras3 oracle, but tf_keras shares a process with it), and
# against the recorded keras3 corpus; then writes reports/html/index.html from all three.
SECOND_IMPL := --impl keraspec.conformance.adapters.keras_torch -k "not spec_checker"
# Keras 3 on torch runs eagerly and slowly: live, it runs in the two full-precision dtypes (the
# corpus run covers every dtype policy).
SECOND_IMPL_LIVE_DTYPES ?= --dtype float32 --dtype float64
report: $(STAMP)
	rm -rf results/report
	-$(PY) -m pytest -n $(JOBS) --dist loadgroup --hypothesis-profile=$(PROFILE) $(DTYPE_ARGS) --results results/report -q conformance/tests
	-KERAS_BACKEND=torch $(PY) -m pytest -n $(JOBS) --dist loadgroup --hypothesis-profile=$(PROFILE) --results results/report -q \
		conformance/tests $(SECOND_IMPL) --oracle tf_keras $(SECOND_IMPL_LIVE_DTYPES)
	-KERAS_BACKEND=torch $(PY) -m pytest -n $(JOBS) --dist loadgroup --hypothesis-profile=$(PROFILE) $(DTYPE_ARGS) --results results/report -q \
		conformance/tests $(SECOND_IMPL) --oracle keras3 --corpus default
	$(VENV)/bin/keraspec report results/report --out reports/html

bench: $(STAMP)
	$(PY) bench/run.py
	$(PY) bench/models.py
	$(PY) bench/ops.py

lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^torch==' > constraints.txt.new
	echo 'torch==2.13.0' >> constraints.txt.new && sort -f -o constraints.txt constraints.txt.new && rm constraints.txt.new

clean:
	rm -rf results reports/html .hypothesis

# The suite's determinism under the CI profile: ten reruns of a selection (a layer per kind of
# check, every dtype policy) must give the same results case for case (make test runs two).
.PHONY: determinism
determinism: $(STAMP)
	KERASPEC_DETERMINISM_RUNS=10 $(PY) -m pytest tests/conformance/test_determinism.py -q

# Mutation test of the suite itself: every mutant in tests/conformance/mutants/ (a correct layer with
# one behaviour broken as a porting bug would break it) under the dev profile, in float32 and
# float64; prints mutant x check -> killed/survived and the kill rate, and fails when a check that
# must catch a mutant passes on it (`make test` runs the fast set, tests/conformance/test_mutants.py).
.PHONY: mutants
mutants: $(STAMP)
	$(PY) tests/conformance/mutants/run.py --set dev --profile dev --jobs $(JOBS) --results results/mutants
