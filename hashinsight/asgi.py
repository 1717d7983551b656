import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashinsight.settings")
django_app = get_asgi_application()  # set Django up before importing anything that touches models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from hashinsight.accounts.ws_auth import WebSocketAuth  # noqa: E402
from telemetry.consumers import AlertConsumer  # noqa: E402

websocket_urls = [path("ws/alerts/", AlertConsumer.as_asgi())]

application = ProtocolTypeRouter(
    {
        "http": django_app,
        # Bearer tokens skip the Origin check; cookie sessions keep it (see ws_auth).
        "websocket": WebSocketAuth(URLRouter(websocket_urls)),
    }
)
