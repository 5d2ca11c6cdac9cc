"""``python -m cli ...`` is ``cryptocast ...``."""

from cli import main

main()
