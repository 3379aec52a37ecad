import os
import sys
import unittest

# run as `python3 -I`: the tree's modules are found after the standard library's, so that a
# unittest.py (or any module named like one of the library's) committed by an agent shadows nothing
sys.path.append(os.getcwd())

import durations


class Hidden(unittest.TestCase):
    def test_parse(self):
        for text, seconds in [("90s", 90), ("10m", 600), ("1h30m", 5400), ("2d4h", 187200),
                              ("1d2h3m4s", 93784), ("45", 45), (" 5m ", 300), ("0s", 0)]:
            self.assertEqual(durations.parse(text), seconds, text)

    def test_refused(self):
        for text in ("", "1x", "30m1h", "1h1h", "-5s", "h", "1 h"):
            with self.assertRaises(ValueError, msg=text):
                durations.parse(text)

    def test_format(self):
        for seconds, text in [(5400, "1h30m"), (172800, "2d"), (45, "45s"), (0, "0s"), (93784, "1d2h3m4s"),
                              (3601, "1h1s")]:
            self.assertEqual(durations.format(seconds), text)
        with self.assertRaises(ValueError):
            durations.format(-1)

    def test_round_trip(self):
        for seconds in range(0, 200000, 997):
            self.assertEqual(durations.parse(durations.format(seconds)), seconds)


if __name__ == "__main__":
    unittest.main()
