"""Codec networks, one family per file (registered with ``@register_model(family="codec")``)."""
