"""Deciding one admission review: the admitter, the resolver over the sources, the deadline."""
