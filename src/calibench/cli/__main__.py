import sys

from calibench.cli import main

sys.exit(main())
