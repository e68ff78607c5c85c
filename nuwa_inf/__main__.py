"""`python -m nuwa_inf` runs the `nuwa-inf` command."""
import sys

from .cli import main

sys.exit(main())
