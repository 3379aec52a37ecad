"""A shopping cart."""

from .pricing import calc


class Cart:
    def __init__(self):
        self.items = []

    def add(self, name, price, quantity=1):
        self.items.append((name, price, quantity))

    def total(self, discount=0.0):
        return calc(self.items, discount)
