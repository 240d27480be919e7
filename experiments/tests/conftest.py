"""The experiment scripts import each other by module name (``python experiments/x.py`` puts
their folder first on sys.path); the tests import them the same way."""

import sys
from pathlib import Path

EXPERIMENTS = str(Path(__file__).resolve().parents[1])
if EXPERIMENTS not in sys.path:
    sys.path.insert(0, EXPERIMENTS)
