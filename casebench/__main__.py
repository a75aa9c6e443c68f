import sys

from casebench.cli import main

sys.exit(main())
