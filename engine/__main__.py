"""`python -m engine`: the flowgraph CLI."""

from engine.cli.app import main

if __name__ == "__main__":  # not when a worker process loads this module as `__mp_main__`
    main()
