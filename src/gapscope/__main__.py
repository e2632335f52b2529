"""`python -m gapscope ...`, the same as the `gapscope` command (for environments without the entry point)."""

from gapscope.cli import main

main()
