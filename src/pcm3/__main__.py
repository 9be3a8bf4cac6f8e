"""``python -m pcm3`` (used by ``torchrun -m pcm3 pretrain ...``)."""

import sys

from pcm3.cli import main

sys.exit(main())
