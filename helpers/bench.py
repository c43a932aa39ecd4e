"""``python -m helpers.bench``: the training-throughput benchmark under the name that the
reference machine's timings use; the code is :mod:`helpers.tools.bench`."""

from .tools.bench import main

if __name__ == "__main__":
    main()
