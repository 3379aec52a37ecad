from collections import Counter

from .words import words


def top_words(text, n):
    return sorted(Counter(words(text)).items(), key=lambda p: (-p[1], p[0]))[:n]
