"""A shopping cart."""

from .pricing import total_price


class Cart:
    def __init__(self):
        self.items = []

    def add(self, name, price, quantity=1):
        self.items.append((name, price, quantity))

    def total(self, discount=0.0):
        return total_price(self.items, discount)
