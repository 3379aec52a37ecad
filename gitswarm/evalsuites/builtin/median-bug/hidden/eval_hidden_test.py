import os
import sys
import unittest

# run as `python3 -I`: the tree's modules are found after the standard library's, so that a
# unittest.py (or any module named like one of the library's) committed by an agent shadows nothing
sys.path.append(os.getcwd())

from stats import mean, median, spread


class Hidden(unittest.TestCase):
    def test_even(self):
        self.assertEqual(median([1, 2, 3, 4]), 2.5)
        self.assertEqual(median([4, 1]), 2.5)
        self.assertEqual(median([5, 5, 1, 9]), 5)

    def test_odd_and_others(self):
        self.assertEqual(median([7]), 7)
        self.assertEqual(median([9, 1, 5]), 5)
        self.assertEqual(mean([1, 2]), 1.5)
        self.assertEqual(spread([2, 2]), 0)
        with self.assertRaises(ValueError):
            median([])


if __name__ == "__main__":
    unittest.main()
