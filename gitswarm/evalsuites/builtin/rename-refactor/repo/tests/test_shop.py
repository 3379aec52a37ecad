import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shop.cart import Cart  # noqa: E402
from shop.pricing import calc  # noqa: E402
from shop.receipt import receipt  # noqa: E402


class Shop(unittest.TestCase):
    def test_calc(self):
        self.assertEqual(calc([("pen", 1.0, 3)]), 3.6)

    def test_cart(self):
        cart = Cart()
        cart.add("book", 10.0)
        cart.add("pen", 1.0, 2)
        self.assertEqual(cart.total(discount=0.5), 7.2)

    def test_receipt(self):
        self.assertIn("total (tax included): 3.60", receipt([("pen", 1.0, 3)]))
