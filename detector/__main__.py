"""``python -m detector`` is the ``streetwatch`` console script."""

from detector.cli import main

main()
