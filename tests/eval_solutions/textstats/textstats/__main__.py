import sys

from .counts import top_words
from .reading import reading_time
from .sentences import sentences
from .words import words

try:
    text = open(sys.argv[1]).read()
except (IndexError, OSError) as e:
    print(f"textstats: {e}", file=sys.stderr)
    sys.exit(2)
print(f"words: {len(words(text))}")
print(f"sentences: {len(sentences(text))}")
print(f"minutes: {reading_time(text)}")
print("top: " + ", ".join(f"{w} ({c})" for w, c in top_words(text, 3)))
