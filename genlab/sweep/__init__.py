"""Hyperparameter sweeps: `python run.py --config FILE --sweep` (driver.py); the trials are
defined in spec.py, run by local.py or ray_backend.py, and reported by report.py."""
