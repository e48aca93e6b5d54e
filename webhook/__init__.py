"""jetstream-pin: keep every Jetstream experiment on the tooling it started with."""

__version__ = "0.1.0"
