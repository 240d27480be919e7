import sys

from ivif_ros.cli import main

sys.exit(main())
