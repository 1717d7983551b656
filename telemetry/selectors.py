from django.db.models import QuerySet

from sites.selectors import miner_scope_q
from telemetry.models import Alert


def alert_list(*, user) -> QuerySet[Alert]:
    """Alerts the user may see: the same site/customer scope as miners."""
    qs = Alert.objects.select_related("site", "miner")
    scope = miner_scope_q(user)
    return qs if scope is None else qs.filter(scope)
