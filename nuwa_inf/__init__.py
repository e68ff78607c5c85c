"""nuwa-inf: infinite-canvas autoregressive image synthesis (NUWA-Infinity style).

Python API (see `nuwa_inf.api`):

    import nuwa_inf
    model = nuwa_inf.load()              # bundled model; nuwa_inf.load("my_model/", device="cuda")
    image = model.extend("piece.png", width=4096, height=1024)

The API is imported on first use, so that `nuwa-inf --help` does not pay for torch.
"""
from .errors import UserError

__version__ = "0.1.0"
__all__ = ["Model", "UserError", "load", "psnr", "to_rgb", "__version__"]

_API_NAMES = {"Model", "load", "psnr", "to_rgb", "MAX_IN_MEMORY_PIXELS"}


def __getattr__(name: str):
    if name in _API_NAMES:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'nuwa_inf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _API_NAMES)
