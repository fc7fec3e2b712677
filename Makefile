# keraspec: `make report` (the main job) and `make test` set everything up on a new machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JOBS ?= 2
PROFILE ?= ci
# Every dtype both oracles run: the low-precision ones catch casts and accumulation-order slips.
DTYPES ?= float32 float64 float16 bfloat16
DTYPE_ARGS := $(foreach d,$(DTYPES),--dtype $(d))
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0
export KERAS_BACKEND := tensorflow

.PHONY: install test report bench lock clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3
	$(PY) -m pip install --quiet -c constraints.txt -e '.[oracle,test]'
	touch $(STAMP)

install: $(STAMP)

# The CI profile: every check for every layer, derandomised and bounded, on 2 cores.
test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --dist loadgroup --hypothesis-profile=$(PROFILE) --strict-registry $(DTYPE_ARGS) \
		--results results/latest -q

# Runs the suite (failures included) on keraspec.impl against the live oracles, then Keras 3's own
# torch backend as a second implementation against the recorded corpus (Keras picks one backend per
# process), and writes reports/html/index.html from both.
report: $(STAMP)
	rm -rf results/report
	-$(PY) -m pytest -n $(JOBS) --dist loadgroup --hypothesis-profile=$(PROFILE) $(DTYPE_ARGS) --results results/report -q conformance/tests
	-KERAS_BACKEND=torch $(PY) -m pytest -n $(JOBS) --dist loadgroup --hypothesis-profile=$(PROFILE) $(DTYPE_ARGS) --results results/report -q \
		conformance/tests --impl keraspec.conformance.adapters.keras_torch --corpus default -k "not spec_checker"
	$(VENV)/bin/keraspec report results/report --out reports/html

bench: $(STAMP)
	$(PY) bench/run.py

lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^torch==' > constraints.txt.new
	echo 'torch==2.13.0' >> constraints.txt.new && sort -f -o constraints.txt constraints.txt.new && rm constraints.txt.new

clean:
	rm -rf results reports/html .hypothesis
