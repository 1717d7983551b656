"""Private file storage: contracts' signed documents, rendered reports and statement exports. Nothing in it has a
public URL; files leave only through views that check the user's scope (or an expiring signed link)."""

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.utils.functional import LazyObject


class _PrivateStorage(LazyObject):
    def _setup(self):
        self._wrapped = FileSystemStorage(location=settings.PRIVATE_MEDIA_ROOT, base_url=None)


private_storage = _PrivateStorage()


def get_private_storage():
    """A callable for ``FileField(storage=...)``: migrations record the callable, not a path on this machine."""
    return private_storage
