import os
import sys
import unittest

# run as `python3 -I`: the tree's modules are found after the standard library's, so that a
# unittest.py (or any module named like one of the library's) committed by an agent shadows nothing
sys.path.append(os.getcwd())

from lru import LRUCache


class Hidden(unittest.TestCase):
    def test_eviction_order(self):
        c = LRUCache(2)
        c.put("a", 1)
        c.put("b", 2)
        self.assertEqual(c.get("a"), 1)
        c.put("c", 3)
        self.assertEqual(c.get("b"), None)
        self.assertEqual(c.get("b", "gone"), "gone")
        self.assertEqual(c.keys(), ["a", "c"])
        self.assertEqual(len(c), 2)

    def test_replace_and_contains(self):
        c = LRUCache(2)
        c.put("a", 1)
        c.put("b", 2)
        self.assertIn("a", c)  # not a use
        c.put("c", 3)
        self.assertNotIn("a", c)
        c.put("b", 20)
        self.assertEqual(c.keys(), ["c", "b"])
        self.assertEqual(c.get("b"), 20)

    def test_capacity(self):
        with self.assertRaises(ValueError):
            LRUCache(0)
        c = LRUCache(1)
        for i in range(1000):
            c.put(i, i)
        self.assertEqual(c.keys(), [999])


if __name__ == "__main__":
    unittest.main()
