import os
import sys
import unittest

# run as `python3 -I`: the tree's modules are found after the standard library's, so that a
# unittest.py (or any module named like one of the library's) committed by an agent shadows nothing
sys.path.append(os.getcwd())

from fizzbuzz import fizzbuzz


class Hidden(unittest.TestCase):
    def test_first_fifteen(self):
        self.assertEqual(fizzbuzz(15), ["1", "2", "Fizz", "4", "Buzz", "Fizz", "7", "8", "Fizz", "Buzz", "11",
                                        "Fizz", "13", "14", "FizzBuzz"])

    def test_edges(self):
        self.assertEqual(fizzbuzz(0), [])
        self.assertEqual(fizzbuzz(1), ["1"])
        self.assertEqual(len(fizzbuzz(100)), 100)
        self.assertEqual(fizzbuzz(30)[-1], "FizzBuzz")

    def test_negative(self):
        with self.assertRaises(ValueError):
            fizzbuzz(-1)


if __name__ == "__main__":
    unittest.main()
