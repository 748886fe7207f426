"""TinyMLaaS: the TinyML lifecycle, from sensor data to a verified model on a device."""

__all__ = ["__version__"]

__version__ = "0.1.0"
