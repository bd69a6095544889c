from streams.counting import pseudonym


def test_pseudonym_is_keyed_stable_and_not_the_reference() -> None:
    a = pseudonym("kent/46/12345/25", b"k" * 16)
    assert a == pseudonym("kent/46/12345/25", b"k" * 16)
    assert a != pseudonym("kent/46/12345/25", b"j" * 16)
    assert a != pseudonym("kent/46/12345/26", b"k" * 16)
    assert len(a) == 16 and "12345" not in a
