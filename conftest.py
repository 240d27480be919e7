"""Run the tests against this source checkout.

The checkout goes first on sys.path so that ``import ivif_ros`` is the code under test,
not a copy installed by ``pip install .``. ``ivif_ros/__init__.py`` extends its
``__path__`` over every ``ivif_ros`` directory on sys.path, so the generated
``ivif_ros.msg`` is still found in site-packages (or a colcon install tree).
"""

import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parent)
if sys.path[:1] != [REPO_ROOT]:
    sys.path.insert(0, REPO_ROOT)
