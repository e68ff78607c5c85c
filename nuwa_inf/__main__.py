"""`python -m nuwa_inf` runs the `nuwa-inf` command."""
from .cli import run

run()
