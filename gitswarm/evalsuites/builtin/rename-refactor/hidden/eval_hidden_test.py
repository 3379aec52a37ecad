import os
import re
import sys
import unittest
from pathlib import Path

# run as `python3 -I`: the tree's modules are found after the standard library's, so that a
# unittest.py (or any module named like one of the library's) committed by an agent shadows nothing
sys.path.append(os.getcwd())

from shop import cart, pricing, receipt


class Hidden(unittest.TestCase):
    def test_renamed(self):
        self.assertTrue(callable(getattr(pricing, "total_price", None)))
        self.assertFalse(hasattr(pricing, "calc"))
        for path in list(Path("shop").rglob("*.py")) + list(Path("tests").rglob("*.py")):
            self.assertIsNone(re.search(r"\bcalc\b", path.read_text()), f"{path} still names calc")

    def test_behaviour(self):
        self.assertEqual(pricing.total_price([("a", 2.5, 2)], discount=0.1), 5.4)
        c = cart.Cart()
        c.add("x", 5.0, 2)
        self.assertEqual(c.total(), 12.0)
        self.assertTrue(receipt.receipt([("pen", 1.0, 3)]).endswith("total (tax included): 3.60"))


if __name__ == "__main__":
    unittest.main()
