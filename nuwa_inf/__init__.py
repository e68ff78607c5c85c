"""nuwa-inf: infinite-canvas autoregressive image synthesis (NUWA-Infinity style)."""
__version__ = "0.1.0"
