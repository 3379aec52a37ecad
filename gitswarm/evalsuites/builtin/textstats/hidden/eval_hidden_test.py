import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

# run as `python3 -I`: the tree's modules are found after the standard library's, so that a
# unittest.py (or any module named like one of the library's) committed by an agent shadows nothing
sys.path.append(os.getcwd())

from textstats.counts import top_words
from textstats.reading import reading_time
from textstats.sentences import sentences
from textstats.words import words

TEXT = "The cat sat. The cat didn't run!! Did the 'dog' run? Yes."


class Hidden(unittest.TestCase):
    def test_words(self):
        self.assertEqual(words("Don't STOP, 'quoted' 42x"), ["don't", "stop", "quoted", "42x"])

    def test_top(self):
        self.assertEqual(top_words(TEXT, 3), [("the", 3), ("cat", 2), ("run", 2)])
        self.assertEqual(top_words(TEXT, 0), [])

    def test_sentences(self):
        self.assertEqual(sentences(TEXT), ["The cat sat.", "The cat didn't run!!", "Did the 'dog' run?", "Yes."])
        self.assertEqual(sentences("  "), [])

    def test_reading(self):
        self.assertEqual(reading_time("word " * 200), 1)
        self.assertEqual(reading_time("word " * 201), 2)
        self.assertEqual(reading_time("word " * 30, wpm=10), 3)
        self.assertEqual(reading_time(""), 0)

    def test_cli(self):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "t.txt"
            path.write_text(TEXT)
            proc = subprocess.run([sys.executable, "-m", "textstats", str(path)], capture_output=True, text=True)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(proc.stdout.splitlines(),
                             ["words: 12", "sentences: 4", "minutes: 1", "top: the (3), cat (2), run (2)"])
            missing = subprocess.run([sys.executable, "-m", "textstats", str(path) + ".no"], capture_output=True,
                                     text=True)
            self.assertEqual(missing.returncode, 2)
            self.assertTrue(missing.stderr)


if __name__ == "__main__":
    unittest.main()
