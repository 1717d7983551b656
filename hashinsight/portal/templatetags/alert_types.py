from django import template

from telemetry.alert_messages import alert_message as _message
from telemetry.alert_types import alert_type_label as _label

register = template.Library()


@register.filter
def alert_type_label(code: str) -> str:
    """An alert type code in the reader's language (the code itself when it has no label)."""
    return _label(code)


@register.filter
def alert_message(alert) -> str:
    """An alert's message in the reader's language (as stored when it cannot be translated)."""
    return _message(alert)
