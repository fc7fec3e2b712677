"""``python -m keraspec.reports RESULTS... [--out DIR] [--previous OLD] [--expect-shards N]``."""

import sys

from .build import main

sys.exit(main())
