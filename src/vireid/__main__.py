"""``python -m vireid`` (also what torchrun runs with ``-m vireid``)."""

from vireid.cli import main

if __name__ == "__main__":
    main()
