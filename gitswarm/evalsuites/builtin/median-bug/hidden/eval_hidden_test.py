import unittest

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
