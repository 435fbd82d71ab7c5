"""The text an order key is made of: fixed-width fields joined, so that keys sort as text in precedence
order (contract 2's `order_key`). Each family builds its keys from these. Imports nothing of the core.
"""


def key(*parts: str) -> str:
    return "|".join(parts)


def padded(number: int, width: int = 15) -> str:
    return f"{number:0{width}d}"
