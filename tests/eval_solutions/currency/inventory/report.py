from .money import format_price


def report(items):
    return "\n".join(f"{item.name}: {format_price(item.price_cents, item.currency)}" for item in items)


def total_by_currency(items):
    totals = {}
    for item in items:
        totals[item.currency] = totals.get(item.currency, 0) + item.price_cents
    return totals
