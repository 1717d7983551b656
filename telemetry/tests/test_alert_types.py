from django.utils import translation

from telemetry.alert_types import alert_type_label


def test_known_codes_read_in_the_readers_language_and_unknown_ones_stay_as_they_are():
    assert alert_type_label("safety_fan_failure") == "Fan failure"
    assert alert_type_label("chip_temp_above") == "Chip temperature above (°C)"
    assert alert_type_label("custom_integration_code") == "custom_integration_code"
    with translation.override("zh-hans"):
        assert alert_type_label("miner_offline") == "矿机离线"
        assert alert_type_label("custom_integration_code") == "custom_integration_code"
