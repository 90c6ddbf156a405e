"""Growth revenue: raw orders and customers -> Delta mart and 30-day segment report."""

__version__ = "0.1.0"
