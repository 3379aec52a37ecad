import os
import sys
import unittest

# run as `python3 -I`: the tree's modules are found after the standard library's, so that a
# unittest.py (or any module named like one of the library's) committed by an agent shadows nothing
sys.path.append(os.getcwd())

from roman import from_roman, to_roman


class Hidden(unittest.TestCase):
    def test_known(self):
        for n, text in [(1, "I"), (4, "IV"), (9, "IX"), (14, "XIV"), (40, "XL"), (90, "XC"), (400, "CD"),
                        (1994, "MCMXCIV"), (2024, "MMXXIV"), (3999, "MMMCMXCIX")]:
            self.assertEqual(to_roman(n), text)
            self.assertEqual(from_roman(text), n)

    def test_round_trip(self):
        for n in range(1, 4000):
            self.assertEqual(from_roman(to_roman(n)), n)

    def test_refused(self):
        for n in (0, -1, 4000):
            with self.assertRaises(ValueError):
                to_roman(n)
        for text in ("IIII", "IC", "", "abc", "VV", "MMMM"):
            with self.assertRaises(ValueError):
                from_roman(text)


if __name__ == "__main__":
    unittest.main()
