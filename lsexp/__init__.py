"""lsexp: label-smoothing calibration experiments (sweep alpha x seeds, report calibration)."""

__version__ = "0.1.0"
