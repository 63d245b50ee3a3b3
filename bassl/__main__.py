"""``python -m bassl`` (and ``deepspeed --module bassl``): the same as the ``bassl`` command."""

import sys

from bassl.cli import main

sys.exit(main())
