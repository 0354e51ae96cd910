"""`python -m cli`: the `approval-gate` command without its console script."""

import sys

from cli.main import main

sys.exit(main())
