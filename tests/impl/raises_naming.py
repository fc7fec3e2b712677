"""``raises_naming``: pytest.raises whose message must also contain every fragment given (the
parameter, the rule, the shape) -- the unit tests' one check that an error names what was wrong."""

from __future__ import annotations

from typing import Any

import pytest


def raises_naming(exc: type[Exception], *fragments: str) -> Any:
    class _Check:
        def __enter__(self) -> Any:
            self.ctx = pytest.raises(exc)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *args: Any) -> bool:
            suppressed = self.ctx.__exit__(*args)
            message = str(self.info.value)
            missing = [f for f in fragments if f not in message]
            assert not missing, f"{message!r} does not name {missing}"
            return suppressed

    return _Check()
