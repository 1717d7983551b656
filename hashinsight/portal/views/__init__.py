"""Portal pages, one module per page family; ``urls.py`` names each view by module."""
