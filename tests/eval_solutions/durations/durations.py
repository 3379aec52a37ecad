import re

UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
PATTERN = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\Z")


def parse(text):
    value = text.strip()
    if value.isdigit():
        return int(value)
    match = PATTERN.match(value)
    if not value or not match:
        raise ValueError(f"{text!r} is not a duration")
    return sum(int(g) * size for g, (_, size) in zip(match.groups(), UNITS) if g)


def format(seconds):
    if seconds < 0:
        raise ValueError(seconds)
    out = ""
    for unit, size in UNITS:
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out or "0s"
