import os
import sys
import unittest

# run as `python3 -I`: the tree's modules are found after the standard library's, so that a
# unittest.py (or any module named like one of the library's) committed by an agent shadows nothing
sys.path.append(os.getcwd())

from text import slugify


class Hidden(unittest.TestCase):
    def test_examples(self):
        self.assertEqual(slugify("Hello, World!"), "hello-world")
        self.assertEqual(slugify("  Crème brûlée -- 2 "), "creme-brulee-2")

    def test_runs_and_edges(self):
        self.assertEqual(slugify("a___b...c"), "a-b-c")
        self.assertEqual(slugify("--x--"), "x")
        self.assertEqual(slugify("!!!"), "")
        self.assertEqual(slugify(""), "")
        self.assertEqual(slugify("Ünïcödé 42"), "unicode-42")


if __name__ == "__main__":
    unittest.main()
