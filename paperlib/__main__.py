import sys

from paperlib.reproduce import main

sys.exit(main())
