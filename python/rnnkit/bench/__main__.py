"""``python -m rnnkit.bench``."""

import sys

from rnnkit.bench.cli import main

sys.exit(main())
