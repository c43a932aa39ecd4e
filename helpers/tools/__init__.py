"""The command-line tools, each run as ``python -m helpers.tools.<name>``."""
