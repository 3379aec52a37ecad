"""Prices of baskets."""

TAX = 0.2


def calc(items, discount=0.0):
    """The price of (name, unit price, quantity) items, after a discount rate, tax included."""
    subtotal = sum(price * quantity for _, price, quantity in items)
    return round(subtotal * (1 - discount) * (1 + TAX), 2)
