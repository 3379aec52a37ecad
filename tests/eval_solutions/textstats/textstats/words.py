import re


def words(text):
    return [w.strip("'") for w in re.findall(r"[\w']+", text.lower()) if w.strip("'")]
