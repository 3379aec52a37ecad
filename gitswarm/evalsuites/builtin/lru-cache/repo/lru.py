"""A least-recently-used cache."""


class LRUCache:
    pass
