"""Receipts."""

from . import pricing


def receipt(items):
    lines = [f"{name} x{quantity}: {price * quantity:.2f}" for name, price, quantity in items]
    lines.append(f"total (tax included): {pricing.total_price(items):.2f}")
    return "\n".join(lines)
