"""Project overrides of Django's locale formats (``FORMAT_MODULE_PATH``); anything not set here
falls through to Django's own module for the language."""
