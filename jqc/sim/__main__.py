"""``python -m jqc.sim [options]``: the same as ``jqc sim [options]``."""

import sys

from jqc.sim.cli import _standalone

sys.exit(_standalone(["sim", *sys.argv[1:]]))
