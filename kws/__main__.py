"""``python -m kws``: the same as the ``kws`` command."""

import sys

from kws.cli import main

sys.exit(main())
