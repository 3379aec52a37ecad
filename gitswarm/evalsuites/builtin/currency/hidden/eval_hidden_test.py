import os
import sys
import unittest

# run as `python3 -I`: the tree's modules are found after the standard library's, so that a
# unittest.py (or any module named like one of the library's) committed by an agent shadows nothing
sys.path.append(os.getcwd())

from inventory.models import Item
from inventory.money import format_price
from inventory.report import report, total_by_currency


class Hidden(unittest.TestCase):
    def test_item(self):
        self.assertEqual(Item("a", 100).currency, "USD")
        self.assertEqual(Item("a", 100, "EUR").currency, "EUR")

    def test_format(self):
        self.assertEqual(format_price(1250), "$12.50")
        self.assertEqual(format_price(1250, "EUR"), "€12.50")
        self.assertEqual(format_price(5, "GBP"), "£0.05")
        self.assertEqual(format_price(1250, "CHF"), "12.50 CHF")
        self.assertEqual(format_price(-300), "-$3.00")

    def test_report(self):
        items = [Item("tea", 350), Item("cake", 420, "EUR"), Item("jam", 199, "CHF"), Item("pie", 100, "EUR")]
        self.assertEqual(report(items).splitlines(), ["tea: $3.50", "cake: €4.20", "jam: 1.99 CHF", "pie: €1.00"])
        self.assertEqual(total_by_currency(items), {"USD": 350, "EUR": 520, "CHF": 199})


if __name__ == "__main__":
    unittest.main()
