"""Run the command line: ``python -m storesync COMMAND``."""

from storesync.cli import main

main(prog_name="python -m storesync")
