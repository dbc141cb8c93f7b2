"""pipeflow: declarative, reproducible pipelines for ML and data work."""

__version__ = "0.1.0"
