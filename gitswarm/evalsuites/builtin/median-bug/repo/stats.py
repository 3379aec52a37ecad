"""Small statistics helpers."""


def mean(values):
    if not values:
        raise ValueError("mean of an empty list")
    return sum(values) / len(values)


def median(values):
    if not values:
        raise ValueError("median of an empty list")
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def spread(values):
    """The largest value minus the smallest."""
    if not values:
        raise ValueError("spread of an empty list")
    return max(values) - min(values)
