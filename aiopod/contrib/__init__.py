"""Adapters that put servers and pipelines beside your beans (the seed's paths, kept)."""
