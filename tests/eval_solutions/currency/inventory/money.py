SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def format_price(cents, currency="USD"):
    sign, amount = ("-" if cents < 0 else ""), f"{abs(cents) / 100:.2f}"
    if currency in SYMBOLS:
        return f"{sign}{SYMBOLS[currency]}{amount}"
    return f"{sign}{amount} {currency}"
