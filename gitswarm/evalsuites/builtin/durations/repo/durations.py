"""Durations like 1h30m."""


def parse(text):
    raise NotImplementedError


def format(seconds):
    raise NotImplementedError
