"""The demo's throwaway project: a tiny shop package with tests, and its plan."""

from __future__ import annotations

import json
import sys

PROJECT_FILES: dict[str, str] = {
    "README.md": "# shop\n\nA tiny shop used by `plait demo`.\n",
    "CHANGELOG.md": "# Changelog\n\n## Unreleased\n",
    "shop/__init__.py": '"""A tiny shop."""\n',
    "shop/settings.py": (
        '"""Feature switches, edited by two demo agents that do not know of each other."""\n'
        "\n"
        "FEATURES = []\n"
    ),
    "shop/cart.py": (
        '"""A shopping cart."""\n'
        "\n"
        "\n"
        "class Cart:\n"
        "    def __init__(self) -> None:\n"
        "        self.items: dict[str, int] = {}\n"
        "\n"
        "    def add(self, sku: str, quantity: int = 1) -> None:\n"
        "        if quantity <= 0:\n"
        '            raise ValueError("quantity must be positive")\n'
        "        self.items[sku] = self.items.get(sku, 0) + quantity\n"
        "\n"
        "    def count(self) -> int:\n"
        "        return sum(self.items.values())\n"
    ),
    "tests/__init__.py": "",
    "tests/test_cart.py": (
        "import unittest\n"
        "\n"
        "from shop.cart import Cart\n"
        "\n"
        "\n"
        "class CartTest(unittest.TestCase):\n"
        "    def test_add_counts(self) -> None:\n"
        "        cart = Cart()\n"
        '        cart.add("apple", 2)\n'
        '        cart.add("pear")\n'
        "        self.assertEqual(cart.count(), 3)\n"
        "\n"
        "    def test_rejects_zero(self) -> None:\n"
        "        with self.assertRaises(ValueError):\n"
        '            Cart().add("apple", 0)\n'
    ),
}


def demo_plan(speed: float = 1.0) -> str:
    """The demo's plan. `speed` scales the agents' simulated work time."""
    agent = [sys.executable, "-m", "plait.demo.agent", "{task}"]

    def secs(value: float) -> str:
        return f"{value * speed:.2f}"

    return f"""\
# The plan `plait demo` runs: eight scripted agents, no API key needed.
version: 1
name: demo-shop
jobs: 4
verify: {_flow([sys.executable, "-m", "unittest", "discover", "-s", "tests", "-t", ".", "-q"])}
agents:
  scripted:
    backend: command
    command: {_flow(agent)}
tasks:
  contract:
    agent: scripted
    prompt: |
      Write the pricing API contract to docs/api.md. (work: {secs(2.0)}s)
    writes: [docs/api.md]
    estimate: {secs(2.0)}s
  pricing:
    agent: scripted
    prompt: |
      Implement shop/pricing.py following this contract (work: {secs(3.0)}s):
      {{{{ tasks.contract.output }}}}
    writes: ["shop/pricing.py"]
    estimate: {secs(3.0)}s
  pricing-tests:
    agent: scripted
    prompt: |
      Write tests/test_pricing.py from this contract, not from the code (work: {secs(2.5)}s):
      {{{{ tasks.contract.output }}}}
    writes: ["tests/test_pricing.py"]
    estimate: {secs(2.5)}s
  storefront:
    agent: scripted
    prompt: |
      Build the storefront page in web/. (work: {secs(3.0)}s)
    writes: ["web/**"]
    estimate: {secs(3.0)}s
  changelog-cart:
    agent: scripted
    prompt: |
      Add a line about the cart to CHANGELOG.md. (work: {secs(1.5)}s)
    writes: [CHANGELOG.md]
    estimate: {secs(1.5)}s
  changelog-pricing:
    agent: scripted
    prompt: |
      Add a line about pricing to CHANGELOG.md. (work: {secs(1.5)}s)
    writes: [CHANGELOG.md]
    estimate: {secs(1.5)}s
  feature-discounts:
    agent: scripted
    prompt: |
      Turn on the "discounts" feature in shop/settings.py. (work: {secs(2.0)}s)
    estimate: {secs(2.0)}s
  feature-gift-cards:
    agent: scripted
    prompt: |
      Turn on the "gift-cards" feature in shop/settings.py. (work: {secs(2.5)}s)
    estimate: {secs(2.5)}s
"""


def _flow(argv: list[str]) -> str:
    # JSON strings are valid YAML flow scalars, whatever the interpreter's path holds.
    return "[" + ", ".join(json.dumps(a) for a in argv) + "]"
