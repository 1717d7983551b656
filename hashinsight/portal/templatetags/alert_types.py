from django import template

from telemetry.alert_types import alert_type_label as _label

register = template.Library()


@register.filter
def alert_type_label(code: str) -> str:
    """An alert type code in the reader's language (the code itself when it has no label)."""
    return _label(code)
