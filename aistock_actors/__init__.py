"""aistock-actors: a supervised, actor-based paper-trading autopilot."""

__version__ = "0.1.0"
