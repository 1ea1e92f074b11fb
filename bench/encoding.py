"""Throughput and agreement of core.encoding.analyze against smsutil.split on generated marketing texts."""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from time import perf_counter
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python bench/encoding.py` from root

import smsutil  # noqa: E402

from core.encoding import SmsAnalysis, analyze  # noqa: E402

FULL_TEXTS = 200_000
QUICK_TEXTS = 20_000
UNICODE_SHARE = 0.17  # chance of a Unicode fragment; ~15% of texts keep one after truncation
EXTENDED_SHARE = 0.12  # chance of an extension-char fragment (€ [ ] { } ...)
EXAMPLES_SHOWN = 5

NAMES = ["Anna", "John", "Maria", "Peter", "Sofia", "Lukas", "Emma", "Noah", "Julia", "Oscar"]
GSM_FRAGMENTS = [
    "Hi {name}!",
    "Get 20% off everything this weekend only.",
    "Use code SPRING24 at checkout.",
    "Shop now: https://sms.example.com/s/Ab3xZ",
    "Reply STOP to opt out.",
    "Your order #48213 has shipped and arrives tomorrow.",
    "Offer ends Sunday at midnight.",
    "Free delivery on orders over 50 EUR.",
    "New arrivals are in store - come and see!",
    "Book your table today, call 020 7946 0958.",
    "Thanks for being a loyal customer, {name}.",
    "Members get double points until Friday.",
    "Don't miss out: stock is limited.",
    "Café Crème, Müsli & Smørrebrød: 2 for 1 on Tuesdays.",
    "Gifts from £9.99 and ¥1200 vouchers.",
]
EXTENDED_FRAGMENTS = [
    "Now only €19.99!",
    "[VIP] early access starts at 9am.",
    "{Members} save an extra 10%.",
    "Prices ~30% lower | today only.",
    "Path: shop\\sale ^ new",
    "Deals from €5 [limited]",
]
UNICODE_FRAGMENTS = [
    "Cześć {name}! Zniżka 20% na wszystko.",
    "Dziękujemy za zakupy w naszym sklepie.",
    "Promocja trwa do niedzieli, zapraszamy!",
    "Łódź, Kraków, Gdańsk: nowe sklepy już otwarte.",
    "Big sale \U0001f389 starts now!",
    "Hot deals \U0001f525\U0001f525",
    "See you soon \U0001f600",
    "Your “exclusive” offer – today only…",
    "Façade-friendly décor, ça va?",
    "Thank you ❤️",
]


def make_text(rng: random.Random) -> str:
    """Return one text of 20..600 chars, mostly short: GSM filler with special fragments at random places."""
    bucket = rng.random()
    low, high = (20, 160) if bucket < 0.5 else (161, 320) if bucket < 0.8 else (321, 600)
    target = rng.randint(low, high)
    name = rng.choice(NAMES)
    specials = []
    if rng.random() < EXTENDED_SHARE:
        specials.append(rng.choice(EXTENDED_FRAGMENTS).replace("{name}", name))
    if rng.random() < UNICODE_SHARE:
        specials.append(rng.choice(UNICODE_FRAGMENTS).replace("{name}", name))
    room = target - sum(len(f) + 1 for f in specials)
    filler = ""
    while len(filler) < room:
        filler += rng.choice(GSM_FRAGMENTS).replace("{name}", name) + " "
    words = filler[: max(room, 0)].split(" ")
    for fragment in specials:  # at a random word boundary, so 2-unit chars land on part boundaries too
        words.insert(rng.randint(0, len(words)), fragment)
    return " ".join(words)[:target]


def make_texts(count: int, seed: int) -> list[str]:
    """Return `count` texts from a seeded generator, the same for every run with that seed."""
    rng = random.Random(seed)
    return [make_text(rng) for _ in range(count)]


def ours(text: str) -> tuple[str, int]:
    """Return (encoding, parts) from core.encoding."""
    return summarize_ours(analyze(text))


def peer(text: str) -> tuple[str, int]:
    """Return (encoding, parts) from smsutil, with its encoding names mapped to ours."""
    return summarize_peer(smsutil.split(text))


def summarize_ours(result: SmsAnalysis) -> tuple[str, int]:
    """Return (encoding, parts) of an analysis."""
    return result.encoding, result.parts


def summarize_peer(result: smsutil.SplitResult) -> tuple[str, int]:
    """Return (encoding, parts) of an smsutil split, with its encoding names mapped to ours."""
    return ("GSM-7" if result.encoding == "gsm0338" else "UCS-2"), len(result.parts)


def timed(fn: Callable[[str], Any], texts: Sequence[str]) -> tuple[float, list[Any]]:
    """Return (texts per second, results) for one pass of `fn` over `texts`."""
    gc.collect()
    start = perf_counter()
    results = [fn(text) for text in texts]
    return len(texts) / (perf_counter() - start), results


def race(texts: Sequence[str], rounds: int) -> tuple[float, float, list[Any], list[Any]]:
    """Time analyze and smsutil.split in alternating passes; keep each one's best rate (least disturbed)."""
    ours_best = peer_best = 0.0
    our_results: list[Any] = []
    peer_results: list[Any] = []
    for _ in range(rounds):
        ours_rate, our_results = timed(analyze, texts)
        peer_rate, peer_results = timed(smsutil.split, texts)
        ours_best, peer_best = max(ours_best, ours_rate), max(peer_best, peer_rate)
    return ours_best, peer_best, our_results, peer_results


def show_disagreements(texts: Sequence[str], title: str) -> int:
    """Print up to EXAMPLES_SHOWN texts where ours and smsutil differ to stderr; return how many differ."""
    differing = [text for text in texts if ours(text) != peer(text)]
    print(f"{title}: {len(differing)} of {len(texts)} disagree", file=sys.stderr)
    for text in differing[:EXAMPLES_SHOWN]:
        print(f"  {text[:60]!r} (len {len(text)}): ours={ours(text)} smsutil={peer(text)}", file=sys.stderr)
    return len(differing)


def edge_cases() -> list[str]:
    """Hand-picked boundary texts, reported apart from the agreement rate (they are not realistic)."""
    return [
        "",
        "\x1b",
        "Sale\x1bnow",
        "a" * 152 + "€" + "a" * 10,
        "€" * 81,
        "ą" * 66 + "\U0001f600" + "ą" * 5,
        "\x00",
        "\ud800 lone surrogate",
    ]


def run(count: int, seed: int, rounds: int) -> dict[str, Any]:
    """Generate texts, time both libraries and compare their (encoding, parts)."""
    texts = make_texts(count, seed)
    unicode_share = sum(ours(t)[0] == "UCS-2" for t in texts) / count
    print(f"{count} texts, {unicode_share:.1%} UCS-2, seed {seed}", file=sys.stderr)
    # time the bare calls; mapping results to (encoding, parts) happens outside the timed loop
    ours_per_s, peer_per_s, our_results, peer_results = race(texts, rounds)
    pairs = zip(map(summarize_ours, our_results), map(summarize_peer, peer_results), strict=True)
    agreeing = sum(a == b for a, b in pairs)
    if agreeing != count:
        show_disagreements(texts, "generated texts")
    else:
        print("generated texts: full agreement", file=sys.stderr)
    show_disagreements(edge_cases(), "edge cases (not in the rate)")
    return {
        "ours_per_s": round(ours_per_s),
        "peer_per_s": round(peer_per_s),
        "ratio": round(ours_per_s / peer_per_s, 2),
        "agreement": agreeing / count,
        "texts": count,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags, run the bench and print the JSON result as the last stdout line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TEXTS:,} texts, not {FULL_TEXTS:,}")
    parser.add_argument("--n", type=int, help="number of texts (overrides --quick)")
    parser.add_argument("--seed", type=int, default=23038, help="generator seed")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes per library; the best counts")
    args = parser.parse_args(argv)
    count = args.n if args.n else QUICK_TEXTS if args.quick else FULL_TEXTS
    if count < 1 or args.rounds < 1:
        parser.error("--n and --rounds must be at least 1")
    result = run(count, args.seed, args.rounds)
    print(
        f"ours {result['ours_per_s']:,}/s, smsutil {result['peer_per_s']:,}/s, "
        f"ratio {result['ratio']}x, agreement {result['agreement']:.4%}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
