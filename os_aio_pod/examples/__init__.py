"""The seed's example bean."""
