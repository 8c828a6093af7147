"""`cel` (common-expression-language) without its command line.

The package's `__init__` imports `cel.cli`, which pulls in prompt_toolkit: about two thirds of
the package's import time, paid by every `flowgraph` command, for a console flowgraph never
uses. A placeholder stands in for `cel.cli` while the package is imported, then is removed, so
that `import cel.cli` elsewhere still gets the real module.
"""

from __future__ import annotations

import sys
import types

_CLI = "cel.cli"
_placeholder = types.ModuleType(_CLI)
if "cel" not in sys.modules:
    sys.modules.setdefault(_CLI, _placeholder)

import cel  # noqa: E402
from cel import stdlib  # noqa: E402

if sys.modules.get(_CLI) is _placeholder:
    del sys.modules[_CLI]

__all__ = ["cel", "stdlib"]
