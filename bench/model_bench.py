"""Model forward throughput benchmark; same as ``reviewpulse bench-model``.

Usage: ``python bench/model_bench.py [--compare VERSION_OR_DIR ...] [--texts 4096]``.
"""

from __future__ import annotations

import sys

from stream.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench-model", *sys.argv[1:]]))
