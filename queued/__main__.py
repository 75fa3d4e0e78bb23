"""``python -m queued``: the same as the ``queued`` script."""

import sys

from queued.cli import main

sys.exit(main())
