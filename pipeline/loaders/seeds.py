"""Per-sample augmentation seeds: NumPy's ``SeedSequence([seed, row])`` for a whole batch of
rows at once.

A sample's seed is ``SeedSequence([seed, row]).generate_state(1, dtype=np.uint64)[0] >> 1``:
a function of the loader's seed and the manifest row only, so augmentations do not depend on
worker count or visiting order. Building one ``SeedSequence`` per image cost 8 us of CPU, a
tenth of the decoded loader's work per 32 px image. :func:`sample_seeds` runs the same hash
(NumPy's ``bit_generator.pyx``: ``mix_entropy`` into a pool of 4 words, then
``generate_state``) on uint32 arrays, one element per row; its constants and word order are
NumPy's, and tests/test_seeds.py checks it against ``SeedSequence`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

POOL_SIZE = 4
INIT_A, MULT_A = 0x43B0D7E5, 0x931E8875
INIT_B, MULT_B = 0x8B51F9DD, 0x58F38DED
MIX_MULT_L, MIX_MULT_R = 0xCA01F9DD, 0x4973F715
MASK32 = 0xFFFFFFFF

#: A 32-bit word, or one per row: NumPy's uint32 arithmetic wraps as the masks below do, so the
#: same code hashes one sample (Python ints) or a batch (uint32 arrays).
Words = int | np.ndarray


def uint32_words(value: int) -> list[int]:
    """``value`` as SeedSequence takes an int: 32-bit words, least significant first (0: one
    word)."""
    if value < 0:
        raise ValueError(f"a seed must be a non-negative integer, not {value}")
    words = [value & MASK32]
    value >>= 32
    while value:
        words.append(value & MASK32)
        value >>= 32
    return words


class Hash:
    """SeedSequence's multiplicative hash: the constant advances with every word hashed."""

    def __init__(self, init: int, mult: int):
        self.const, self.mult = init, mult

    def __call__(self, value: Words) -> Words:
        value = value ^ self.const
        self.const = (self.const * self.mult) & MASK32
        value = (value * self.const) & MASK32
        return value ^ (value >> 16)


def mix(x: Words, y: Words) -> Words:
    """SeedSequence's ``mix`` of two words."""
    result = (MIX_MULT_L * x - MIX_MULT_R * y) & MASK32
    return result ^ (result >> 16)


def first_two_words(entropy: list[Words]) -> tuple[Words, Words]:
    """``SeedSequence(entropy words).generate_state(2)``: the pool mixed from the entropy,
    then its first two output words."""
    hashmix, zero = Hash(INIT_A, MULT_A), entropy[-1] * 0
    pool = [hashmix(entropy[i] if i < len(entropy) else zero) for i in range(POOL_SIZE)]
    for src in range(POOL_SIZE):
        for dst in range(POOL_SIZE):
            if src != dst:
                pool[dst] = mix(pool[dst], hashmix(pool[src]))
    for extra in entropy[POOL_SIZE:]:
        for dst in range(POOL_SIZE):
            pool[dst] = mix(pool[dst], hashmix(extra))
    state = Hash(INIT_B, MULT_B)
    return state(pool[0]), state(pool[1])


def check_rows(low: int, high: int) -> None:
    """Rows must be one 32-bit word each (as every manifest's are)."""
    if low < 0 or high > MASK32:
        raise ValueError(f"sample rows must lie in [0, 2**32), not {low}..{high}")


def sample_seeds(seed: int, rows: Sequence[int] | np.ndarray) -> np.ndarray:
    """The augmentation seed of every row in ``rows`` (int64, in [0, 2**63)) for a loader
    seeded ``seed``: ``SeedSequence([seed, row]).generate_state(1, np.uint64)[0] >> 1``."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size:
        check_rows(int(rows.min()), int(rows.max()))
    words = [np.full(rows.shape, w, dtype=np.uint32) for w in uint32_words(seed)]
    low, high = (w.astype(np.uint64) for w in first_two_words(words + [rows.astype(np.uint32)]))
    return ((low | (high << np.uint64(32))) >> np.uint64(1)).astype(np.int64)


def sample_seed(seed: int, row: int) -> int:
    """The augmentation seed of one row (:func:`sample_seeds`, on Python ints)."""
    check_rows(row, row)
    low, high = first_two_words(uint32_words(seed) + [row])
    return (low | high << 32) >> 1
