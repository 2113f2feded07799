"""``python -m ui``: start Roundtable's browser UI."""

import sys

from ui.cli import main

sys.exit(main())
