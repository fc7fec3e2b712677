"""keraspec.conformance -- the conformance harness: strategies from the spec, oracles, checks."""
