import datetime as dt

import pytest

from liushou_geo.cleaning import CellError, name_key, parse_date, parse_yes_no, village_base
from liushou_geo.headers import canonical, detect_kind


@pytest.mark.parametrize("cell", ["2015-03-02", "2015/3/2", "2015年3月2日", "20150302", 42065, dt.date(2015, 3, 2),
                                  dt.datetime(2015, 3, 2, 0, 0)])
def test_dates_in_every_clerk_form(cell):
    assert parse_date(cell) == dt.date(2015, 3, 2)


def test_bad_date_says_how_to_fix():
    with pytest.raises(CellError) as e:
        parse_date("2015-13-45")
    assert "2015-03-02" in e.value.message


@pytest.mark.parametrize("name,base", [("李家村", "李家村"), ("李家村委会", "李家村"), ("李家村民委员会", "李家村"),
                                       ("城东社区", "城东社区"), ("城东社区居委会", "城东社区"),
                                       ("城东社区居民委员会", "城东社区")])
def test_village_suffix_variants(name, base):
    assert village_base(name) == base
    assert name_key(name) == name_key(base)


def test_yes_no():
    assert parse_yes_no("是") is True and parse_yes_no("否") is False and parse_yes_no(None) is None


@pytest.mark.parametrize("header,key", [("县（市、区）", "county"), ("身份证\n号码", "id_number"), ("公民身份号码", "id_number"),
                                        ("村（居）", "village"), (" 姓 名 ", "name"), ("乡镇（街道）", "township")])
def test_header_variants(header, key):
    assert canonical(header) == key


def test_kind_detection():
    assert detect_kind({"name", "id_number", "village"}) == "registry"
    assert detect_kind({"id_number", "trained_on", "guardian_name"}) == "attendance"
    assert detect_kind({"id_number", "contact_date", "mode", "helper"}) == "contacts"
    assert detect_kind({"host", "room_status", "lon", "lat"}) == "rooms"
    assert detect_kind({"unit_name", "terminals", "mailbox"}) == "terminals"
    assert detect_kind({"case_no", "eligible", "aided", "id_number"}) == "legal_cases"
    assert detect_kind({"name"}) is None
