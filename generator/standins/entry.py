"""Command-line helpers of the stand-ins: the command that runs one, and the message a
stand-in prints when it is started without its server packages.

Starlette and uvicorn come with Rabt's ``test`` extra, not with a plain install, so
``python -m generator.standins.hubspot`` on a plain install would end in an import
traceback without this.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

EXIT_MISSING_PACKAGE = 2


def exit_missing_package(error: ModuleNotFoundError, standin: str) -> NoReturn:
    """Print which package is missing and how to install it, then exit with code 2."""
    package = (error.name or "starlette").split(".")[0]
    print(f"error: the {standin} stand-in needs the Python package {package!r}, which is not "
          "installed. Install Rabt with its test extras from the repository folder: "
          "pip install -e '.[test]' (in a "
          "generated service: pip install starlette uvicorn)", file=sys.stderr)
    raise SystemExit(EXIT_MISSING_PACKAGE)


def module_command(module_file: str, package: str | None) -> str:
    """Return the ``python -m`` command that runs the stand-in module ``module_file``.

    The package is ``generator.standins`` in Rabt and ``storesync.standins`` in a
    generated service, which copies it, so the name comes from where the module is
    imported from.
    """
    module = Path(module_file)
    return f"python -m {package or module.parent.name}.{module.stem}"
