"""``python -m roundtable.ui``: start Roundtable's browser UI."""

import sys

from roundtable.ui.cli import main

sys.exit(main())
