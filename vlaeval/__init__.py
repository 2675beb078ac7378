"""vlaeval: honest, reproducible evaluation of VLA policies and multimodal models."""

__version__ = "0.1.0"
