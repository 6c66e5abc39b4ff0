import pytest

from conftest import ROOT

from liushou_geo.settings import SettingsError, load_settings


def test_shipped_settings_load():
    s = load_settings(ROOT / "data" / "settings.toml")
    assert s.age_limit == 18 and s.children_per_terminal == 60 and s.room_cost_yuan == 30000
    assert s.targets["t4_pairing"] == 60 and s.targets["t1b_registry_scattered"] == 90


@pytest.mark.parametrize("old,new,word", [
    ("age_limit = 18", "age_limit = 30", "age_limit"),
    ("children_per_terminal = 60", "children_per_terminal = 0", "children_per_terminal"),
    ("t4_pairing = 60", "t4_pairing = 160", "t4_pairing"),
    ("code_prefix = \"4399\"", "code_prefix = \"43\"", "code_prefix"),
])
def test_bad_values_are_refused_with_the_key(tmp_path, old, new, word):
    text = (ROOT / "data" / "settings.toml").read_text(encoding="utf-8")
    assert old in text
    p = tmp_path / "s.toml"
    p.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(SettingsError) as e:
        load_settings(p)
    assert word in str(e.value) and "无效" in str(e.value)


def test_missing_file_and_broken_toml(tmp_path):
    with pytest.raises(SettingsError, match="找不到"):
        load_settings(tmp_path / "none.toml")
    p = tmp_path / "bad.toml"
    p.write_text("[city\nname=", encoding="utf-8")
    with pytest.raises(SettingsError, match="格式错误"):
        load_settings(p)
