import unittest

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
