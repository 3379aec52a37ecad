import unittest

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
