"""Generated sample contacts (for `smsconnect demo` and the benchmarks): realistic, seeded, varied."""

from __future__ import annotations

import csv
import random
from pathlib import Path

FIRST_NAMES = ["Anna", "Piotr", "Katarzyna", "Łukasz", "Zofia", "Michał", "Agnieszka", "Tomasz", "Małgorzata",
               "Paweł", "Ewa", "Krzysztof", "Joanna", "Jakub", "Magdalena", "Marek", "Ola", "Jan", "Maria", ""]
CITIES = ["Warszawa", "Kraków", "Gdańsk", "Wrocław", "Poznań", "Łódź", "Lublin", "Szczecin", "Katowice", "Toruń"]
PREFIXES = ["50", "51", "53", "57", "60", "66", "69", "72", "73", "78", "79", "88"]  # Polish mobile ranges
HEADER = ["Mobile", "Name", "City", "LastPurchase", "Marketing"]


def phone_forms(rng: random.Random, serial: int) -> tuple[str, str]:
    """A unique valid Polish mobile number for `serial`, written in one of the common forms."""
    national = f"{PREFIXES[serial % len(PREFIXES)]}{serial // len(PREFIXES):07d}"
    form = rng.random()
    if form < 0.4:
        written = f"+48{national}"
    elif form < 0.6:
        written = f"0048{national}"
    elif form < 0.85:
        written = f"{national[:3]} {national[3:6]} {national[6:]}"
    else:
        written = national
    return written, f"+48{national}"


def write_contacts_csv(path: Path, rows: int, seed: int = 7, bad_every: int = 0) -> int:
    """Writes `rows` contacts (header Mobile,Name,City,LastPurchase,Marketing); returns the row count.

    With `bad_every` = k, every k-th row carries an invalid phone, so imports show row errors.
    """
    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            phone, _ = phone_forms(rng, i)
            if bad_every and i % bad_every == bad_every - 1:
                phone = f"12{i % 1000}"
            writer.writerow([
                phone, rng.choice(FIRST_NAMES), rng.choice(CITIES),
                f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}", "yes" if rng.random() < 0.8 else "no",
            ])
    return rows
