"""Text helpers."""


def slugify(title):
    """A URL slug for a title."""
    return title
