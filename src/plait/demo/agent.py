"""The demo's scripted agent: `python -m plait.demo.agent TASK`, prompt on stdin.

It behaves like a small, obedient coding agent: it waits a while (the "work" the
prompt names), changes the files its task is about, and prints a final message.
It never reads anything but its prompt and the files in its workspace.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

CONTRACT = """\
# Pricing API

- `total(cart, discount_percent=0) -> int`: the cart's price in cents.
- Prices: apple 50, pear 80, anything else 100 (cents each).
- `discount_percent` is 0..100; other values raise ValueError.
"""


def _work(prompt: str) -> None:
    found = re.search(r"\(work: ([0-9.]+)s\)", prompt)
    time.sleep(float(found.group(1)) if found else 1.0)


def _write(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def contract() -> str:
    _write("docs/api.md", CONTRACT)
    return CONTRACT


def pricing(prompt: str) -> str:
    if "total(cart, discount_percent=0)" not in prompt:
        raise SystemExit("pricing: the contract was not in my prompt")
    _write(
        "shop/pricing.py",
        '"""Prices, as docs/api.md specifies them."""\n\n'
        "from shop.cart import Cart\n\n"
        'PRICES = {"apple": 50, "pear": 80}\n\n\n'
        "def total(cart: Cart, discount_percent: int = 0) -> int:\n"
        "    if not 0 <= discount_percent <= 100:\n"
        '        raise ValueError("discount_percent must be within 0..100")\n'
        "    gross = sum(PRICES.get(sku, 100) * n for sku, n in cart.items.items())\n"
        "    return gross * (100 - discount_percent) // 100\n",
    )
    return "Implemented shop.pricing.total as the contract says."


def pricing_tests(prompt: str) -> str:
    if "discount_percent" not in prompt:
        raise SystemExit("pricing-tests: the contract was not in my prompt")
    _write(
        "tests/test_pricing.py",
        "import unittest\n\n"
        "from shop.cart import Cart\n"
        "from shop.pricing import total\n\n\n"
        "class PricingTest(unittest.TestCase):\n"
        "    def test_total(self) -> None:\n"
        "        cart = Cart()\n"
        '        cart.add("apple", 2)\n'
        '        cart.add("melon")\n'
        "        self.assertEqual(total(cart), 200)\n"
        "        self.assertEqual(total(cart, 50), 100)\n\n"
        "    def test_bad_discount(self) -> None:\n"
        "        with self.assertRaises(ValueError):\n"
        "            total(Cart(), 101)\n",
    )
    return "Wrote tests/test_pricing.py from the contract."


def storefront() -> str:
    _write(
        "web/index.html",
        "<!doctype html>\n<title>shop</title>\n<h1>Welcome to the shop</h1>\n"
        '<ul id="products"><li>apple</li><li>pear</li></ul>\n',
    )
    _write("web/style.css", "body { font-family: sans-serif; }\n")
    return "Built web/index.html and web/style.css."


def changelog(entry: str) -> str:
    path = Path("CHANGELOG.md")
    text = path.read_text(encoding="utf-8")
    path.write_text(text.rstrip("\n") + f"\n- {entry}\n", encoding="utf-8")
    return f"Added '{entry}' to the changelog."


def feature(name: str) -> str:
    """Add a feature to the FEATURES list, keeping whatever is there already."""
    path = Path("shop/settings.py")
    text = path.read_text(encoding="utf-8")
    found = re.search(r"^FEATURES = \[(.*)\]$", text, flags=re.MULTILINE)
    if found is None:
        raise SystemExit("settings.py has no FEATURES line")
    names = [n.strip().strip('"') for n in found.group(1).split(",") if n.strip()]
    if name not in names:
        names.append(name)
    line = "FEATURES = [" + ", ".join(f'"{n}"' for n in names) + "]"
    path.write_text(text[: found.start()] + line + text[found.end() :], encoding="utf-8")
    return f"Enabled feature {name}."


def main(argv: list[str]) -> int:
    task = argv[1] if len(argv) > 1 else ""
    prompt = sys.stdin.read()
    _work(prompt)
    actions: dict[str, Callable[[], str]] = {
        "contract": contract,
        "pricing": lambda: pricing(prompt),
        "pricing-tests": lambda: pricing_tests(prompt),
        "storefront": storefront,
        "changelog-cart": lambda: changelog("The cart counts items."),
        "changelog-pricing": lambda: changelog("Prices and discounts."),
        "feature-discounts": lambda: feature("discounts"),
        "feature-gift-cards": lambda: feature("gift-cards"),
    }
    action = actions.get(task)
    if action is None:
        print(f"demo agent: no script for task {task!r}", file=sys.stderr)
        return 2
    print(action())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
