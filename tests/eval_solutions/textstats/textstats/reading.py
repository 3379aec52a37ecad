import math

from .words import words


def reading_time(text, wpm=200):
    return math.ceil(len(words(text)) / wpm)
