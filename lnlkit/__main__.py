import sys

from lnlkit.cli import main

sys.exit(main())
