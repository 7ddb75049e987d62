import numpy as np

from model import digit_words


def test_a_digit_is_the_same_in_either_language() -> None:
    four, vier = digit_words.KEYS.index("four"), digit_words.KEYS.index("vier")
    assert digit_words.same_digit(four, vier) and digit_words.same_digit(vier, vier)
    np.testing.assert_array_equal(digit_words.same_digit(np.array([4, 14, 5]), 4),
                                  [True, True, False])
