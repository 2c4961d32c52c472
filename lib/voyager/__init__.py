"""smtx-voyager: SmartX SMTX OS deployment and acceptance suite."""

__version__ = "0.1.0"
