"""The seed's adapters, now in ``aiopod.contrib``."""
