import datetime as dt

import pytest

from liushou_geo import idcard


def test_known_valid_id():
    # The standard's worked example: 11010519491231002X.
    assert idcard.check_digit("11010519491231002") == "X"
    assert idcard.is_valid("11010519491231002X")
    assert idcard.birth_date("11010519491231002X") == dt.date(1949, 12, 31)
    assert idcard.sex("11010519491231002X") == "女"


def test_make_id_round_trips():
    i = idcard.make_id("439921", dt.date(2015, 3, 2), 17, male=True)
    assert idcard.is_valid(i) and idcard.sex(i) == "男" and idcard.birth_date(i) == dt.date(2015, 3, 2)


def _fullwidth(text):
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


@pytest.mark.parametrize("variant", [
    lambda i: f" {i[:6]} {i[6:14]} {i[14:]} ",   # spaces inside and around
    _fullwidth,                                   # full-width digits
    lambda i: i.lower(),                          # lowercase x
    lambda i: i + "\u3000",                      # ideographic space
])
def test_normalise_recovers_the_id(variant):
    i = next(idcard.make_id("439921", dt.date(2015, 3, 2), s, male=True) for s in range(500)
             if idcard.make_id("439921", dt.date(2015, 3, 2), s, male=True).endswith("X"))
    assert idcard.normalise(variant(i)) == i


def test_wrong_check_digit_rejected():
    i = idcard.make_id("439921", dt.date(2015, 3, 2), 17, male=True)
    bad = i[:17] + ("0" if i[17] != "0" else "1")
    assert not idcard.is_valid(bad)


def test_excel_rounded_recognised():
    assert idcard.looks_excel_rounded(4.39921201503021e17)
    assert idcard.looks_excel_rounded("4.39921E+17")
    assert not idcard.looks_excel_rounded(idcard.make_id("439921", dt.date(2015, 3, 2), 17, male=True))


def test_mask_keeps_six_and_four():
    assert idcard.mask("43022420150302123X") == "430224********123X"


def test_age_on_birthday_boundary():
    assert idcard.age_on(dt.date(2008, 7, 1), dt.date(2026, 6, 30)) == 17
    assert idcard.age_on(dt.date(2008, 6, 30), dt.date(2026, 6, 30)) == 18
