from .money import format_price


def report(items):
    return "\n".join(f"{item.name}: {format_price(item.price_cents)}" for item in items)
